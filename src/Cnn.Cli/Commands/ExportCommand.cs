using System.Globalization;
using Cnn.Backbones.Onnx.Export;
using Cnn.Cli.Inference;
using Cnn.MLNet.Export;
using Cnn.MLNet.Persistence;
using Microsoft.ML;

namespace Cnn.Cli.Commands;

/// <summary>
/// <c>cnn export --model-file model.zip --output model.onnx</c> or <c>cnn export --model &lt;name&gt; [--weights W] --output
/// model.onnx</c>: writes the network as ONNX (opset 17, input <c>input</c> NCHW float32 with a dynamic batch axis, output
/// <c>logits</c> or <c>probabilities</c>), verified against ONNX Runtime before anything is written. With <c>--format mlnet</c>:
/// the whole pipeline as a plain ML.NET model (<see cref="MLNetExport"/>) and its consumption code beside it.
/// </summary>
public sealed class ExportCommand : ICliCommand
{
    /// <inheritdoc />
    public string Name => "export";

    /// <inheritdoc />
    public string Summary => "write a model as ONNX (opset 17), verified against ONNX Runtime, or as a plain ML.NET model (--format mlnet)";

    /// <inheritdoc />
    public IReadOnlyList<CliOption> Options { get; } =
    [
        CommonOptions.ModelFile("a model saved by 'cnn train' or 'cnn distill' (or --model)"),
        CommonOptions.Model("registered architecture (or --model-file)"),
        CommonOptions.Weights("with --model: weights to load: " + CommonOptions.WeightsForms + ", or a file written by 'cnn import'; without, the weights are random"),
        CommonOptions.Pretrained,
        new("--num-classes", "with --model: classes of the classifier (default: the weight file's, else 1000)", "N"),
        new("--labels", "with --model: a text file of class names, one per line, in class order, for the metadata", "<file>"),
        CommonOptions.InferenceImageSize,
        CommonOptions.Output("the .onnx file to write (default: the model file's name, or the model's, with .onnx; with --format mlnet: .mlnet.zip)"),
        new("--format", "onnx (default): the network as ONNX; mlnet: the pipeline as an ML.NET model that needs no TorchSharp (with --model-file); timm: the network's weights in timm's state-dict layout (.safetensors) for Python users", "onnx|mlnet|timm"),
        new("--image-input", "with --format mlnet: the model's image column holds decoded images (image, default: MLImage) or file paths (path: LoadImages)", "image|path"),
        new("--probabilities", "output softmax probabilities ('probabilities') instead of logits ('logits')"),
        new("--normalize-inside", "put the normalisation in the graph: the input is then 0-255 pixel values (ML.NET's ExtractPixels)"),
        new("--dynamic-size", "symbolic height and width too (architectures without a fixed-size part only)"),
        new("--tolerance", "largest relative difference accepted by the verification (default 1e-4)", "F"),
    ];

    /// <inheritdoc />
    public string? Positionals => null;

    /// <inheritdoc />
    public string Details =>
        "The graph is the network's eval-mode forward pass with its weights; resizing and cropping stay outside it. By default its\n" +
        "input is normalised, (pixel / 255 - mean) / std per channel, as timm exports; --normalize-inside takes 0-255 pixels instead.\n" +
        "metadata_props record the architecture, input size, mean/std, normalisation, output and class labels (cnn.*).\n" +
        "Before writing, ONNX Runtime runs the graph on a random batch of two and must agree with the network within --tolerance.\n" +
        "An exported model imports back with 'cnn import <model.onnx> --model <name>' (without --normalize-inside).\n" +
        "--format mlnet writes the pipeline with ML.NET's own transformers only (ResizeImages, ExtractPixels, ApplyOnnxModel on the\n" +
        "verified graph with normalisation and softmax inside, the label mapping): mlContext.Model.Load reads it with Microsoft.ML,\n" +
        "Microsoft.ML.ImageAnalytics and Microsoft.ML.OnnxTransformer, no TorchSharp. Beside it, <name>.consumption.cs holds the\n" +
        "ModelInput/ModelOutput classes and the code that predicts. Images that need resizing are resized by ML.NET (Skia's\n" +
        "Mitchell cubic), not as Pillow does, so their probabilities differ slightly from this library's.";

    /// <inheritdoc />
    public int Run(CliArguments arguments, TextWriter stdout, TextWriter stderr)
    {
        string format = arguments.String("--format") ?? "onnx";
        if (format is not ("onnx" or "mlnet" or "timm"))
            throw new CliUsageException($"--format: '{format}' is not a format; give onnx, mlnet or timm");
        if (format == "mlnet") return RunMLNet(arguments, stdout);
        if (format == "timm") return RunTimm(arguments, stdout, stderr);
        if (arguments.String("--image-input") is not null) throw new CliUsageException("--image-input applies to --format mlnet only");
        string? model = arguments.String("--model");
        string? modelFile = arguments.String("--model-file");
        string? weights = CommonOptions.WeightsOf(arguments);
        int? numClasses = arguments.OptionalInt("--num-classes", min: 1);
        string? labelsPath = arguments.String("--labels");
        int? imageSize = arguments.OptionalInt("--image-size", min: 8, max: 4096);
        double tolerance = arguments.Double("--tolerance", 1e-4, min: 1e-12, max: 1) ?? 1e-4;
        if ((model is null) == (modelFile is null))
            throw new CliUsageException("give either --model <name> or --model-file <model.zip>");
        if (modelFile is not null && (weights is not null || numClasses is not null || labelsPath is not null))
            throw new CliUsageException("--weights, --num-classes and --labels apply to --model only (a model file carries its own)");
        if (model is not null) model = CliApp.RequireModel(model);
        if (modelFile is not null && !File.Exists(modelFile)) throw new FileNotFoundException($"model file not found: {modelFile}", modelFile);
        if (weights is not null && !Cnn.Backbones.Weights.PretrainedWeights.IsName(weights) && !File.Exists(weights)) throw new FileNotFoundException($"--weights: file not found: {weights}", weights);
        if (labelsPath is not null && !File.Exists(labelsPath)) throw new FileNotFoundException($"--labels: file not found: {labelsPath}", labelsPath);
        string output = OutputPath.Check(arguments.String("--output") ?? (modelFile is not null ? Path.ChangeExtension(modelFile, ".onnx") : model + ".onnx"), "--output");

        var options = new OnnxExportOptions
        {
            ImageSize = imageSize,
            Output = arguments.Flag("--probabilities") ? OnnxExportOutput.Probabilities : OnnxExportOutput.Logits,
            NormalizeInside = arguments.Flag("--normalize-inside"),
            DynamicSize = arguments.Flag("--dynamic-size"),
            Tolerance = tolerance,
        };
        OnnxExportResult result;
        if (modelFile is not null)
        {
            result = ClassifierOnnxExport.Export(modelFile, options);
        }
        else
        {
            if (weights is null) BackboneRunner.WarnRandomWeights(stderr, model!);
            using var runner = BackboneRunner.Create(model!, weights, numClasses, cropPct: null, imageSize);
            var labels = labelsPath is null ? null : LabelFile.Read(labelsPath, runner.NumClasses);
            result = ClassifierOnnxExport.Export(runner.Network, labels, options);
        }
        result.Save(output);
        Report(stdout, result, options, output);
        return 0;
    }

    /// <summary>
    /// <c>--format timm</c>: the network's weights in timm's layout (<see cref="Cnn.Backbones.Weights.WeightLayout.Timm"/>), which
    /// <c>timm.create_model(name, num_classes=N)</c> loads with <c>load_state_dict(strict=True)</c>.
    /// </summary>
    private static int RunTimm(CliArguments arguments, TextWriter stdout, TextWriter stderr)
    {
        foreach (var option in new[] { "--labels", "--image-input", "--tolerance" })
            if (arguments.String(option) is not null) throw new CliUsageException($"{option} does not apply to --format timm");
        foreach (var flag in new[] { "--probabilities", "--normalize-inside", "--dynamic-size" })
            if (arguments.Flag(flag)) throw new CliUsageException($"{flag} does not apply to --format timm (it writes weights, not a graph)");
        string? model = arguments.String("--model");
        string? modelFile = arguments.String("--model-file");
        string? weights = CommonOptions.WeightsOf(arguments);
        int? numClasses = arguments.OptionalInt("--num-classes", min: 1);
        if ((model is null) == (modelFile is null))
            throw new CliUsageException("give either --model <name> or --model-file <model.zip>");
        if (modelFile is not null && (weights is not null || numClasses is not null))
            throw new CliUsageException("--weights and --num-classes apply to --model only (a model file carries its own)");
        if (model is not null) model = CliApp.RequireModel(model);
        if (model is not null && Cnn.Backbones.Models.ModelRegistry.GetDefinition(model).TimmKeyMap is null) throw NoTimmLayout(model);
        if (modelFile is not null && !File.Exists(modelFile)) throw new FileNotFoundException($"model file not found: {modelFile}", modelFile);
        string name = model ?? Path.GetFileNameWithoutExtension(modelFile!);
        string output = OutputPath.Check(arguments.String("--output") ?? name + ".timm.safetensors", "--output");
        if (modelFile is not null)
        {
            using var pipeline = PipelineModel.Load(modelFile);
            return WriteTimm(pipeline.Classifier.Network.Model, output, stdout);
        }
        if (weights is null) BackboneRunner.WarnRandomWeights(stderr, model!);
        using var runner = BackboneRunner.Create(model!, weights, numClasses, cropPct: null);
        return WriteTimm(runner.Network.Model, output, stdout);
    }

    private static int WriteTimm(Cnn.Backbones.Models.Backbone model, string output, TextWriter stdout)
    {
        if (model.TimmKeyMap is null) throw NoTimmLayout(model.GetName());
        string timmName = Cnn.Backbones.Models.ModelRegistry.GetDefinition(model.GetName()).TimmNames.FirstOrDefault() ?? model.GetName();
        model.SaveWeights(output, Cnn.Backbones.Weights.WeightLayout.Timm);
        stdout.WriteLine($"wrote {output} (timm's layout; in Python: timm.create_model(\"{timmName}\", num_classes={model.NumClasses})" +
                         ".load_state_dict(safetensors.torch.load_file(path), strict=True))");
        return 0;
    }

    private static InvalidOperationException NoTimmLayout(string model) =>
        new($"timm has no architecture that is {model}, so its weights have no timm layout; export it as ONNX instead (--format onnx).");

    private static int RunMLNet(CliArguments arguments, TextWriter stdout)
    {
        string? modelFile = arguments.String("--model-file");
        if (modelFile is null) throw new CliUsageException("--format mlnet needs --model-file <model.zip> (a pipeline saved by 'cnn train')");
        foreach (var option in new[] { "--model", "--weights", "--num-classes", "--labels", "--image-size" })
            if (arguments.String(option) is not null) throw new CliUsageException($"{option} does not apply to --format mlnet (the model file carries its own)");
        if (arguments.Flag("--pretrained")) throw new CliUsageException("--pretrained does not apply to --format mlnet (the model file carries its own)");
        foreach (var flag in new[] { "--probabilities", "--normalize-inside", "--dynamic-size" })
            if (arguments.Flag(flag)) throw new CliUsageException($"{flag} does not apply to --format mlnet (its graph always takes 0-255 pixels and gives probabilities)");
        var input = (arguments.String("--image-input") ?? "image") switch
        {
            "image" => MLNetImageInput.Image,
            "path" => MLNetImageInput.Path,
            var other => throw new CliUsageException($"--image-input: '{other}' is not an input kind; give image or path"),
        };
        double tolerance = arguments.Double("--tolerance", 1e-4, min: 1e-12, max: 1) ?? 1e-4;
        if (!File.Exists(modelFile)) throw new FileNotFoundException($"model file not found: {modelFile}", modelFile);
        string output = OutputPath.Check(arguments.String("--output") ?? Path.ChangeExtension(modelFile, ".mlnet.zip"), "--output");
        string codePath = MLNetConsumptionCode.PathFor(output);

        var ml = new MLContext(seed: 0);
        var plain = CnnPipelineFile.ExportForMLNet(ml, modelFile, output, new MLNetExportOptions { ImageInput = input, Tolerance = tolerance });
        File.WriteAllText(codePath, MLNetConsumptionCode.Write(plain, Path.GetFileName(output)));
        stdout.WriteLine($"input:  {string.Join(", ", plain.InputSchema.Where(c => !c.IsHidden).Select(c => $"{c.Name} ({MLNetConsumptionCode.Describe(c.Type)})"))}");
        stdout.WriteLine($"output: {plain.ScoreColumn} (probabilities of {plain.ClassNames.Count} classes, slot names = class names), {plain.PredictedLabelColumn} (key, key values = class names)");
        stdout.WriteLine($"preprocessing: {plain.Preprocessing}");
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"verified: ONNX Runtime agrees with the network (relative difference {plain.OnnxRelativeDifference:G3}), and the ML.NET stages reproduce its probabilities on a random image (tolerance {tolerance:G3})"));
        long bytes = new FileInfo(output).Length;
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {output} ({bytes / 1048576.0:F1} MB; loads with mlContext.Model.Load, needs Microsoft.ML, Microsoft.ML.ImageAnalytics, Microsoft.ML.OnnxTransformer)"));
        stdout.WriteLine($"wrote {codePath} (ModelInput, ModelOutput and the code that predicts)");
        return 0;
    }

    private static void Report(TextWriter stdout, OnnxExportResult result, OnnxExportOptions options, string output)
    {
        var shape = result.InputShape;
        string size = options.DynamicSize ? "height, width" : $"{shape[2]}, {shape[3]}";
        string input = options.NormalizeInside ? "0-255 pixels, normalised in the graph" : "normalised pixels: (pixel / 255 - mean) / std";
        var outputDims = result.Model.Graph.Output[0].Type.TensorType.Shape.Dim.Select(d => d.HasDimValue ? d.DimValue.ToString(CultureInfo.InvariantCulture) : d.DimParam);
        stdout.WriteLine($"input '{OnnxExporter.InputName}' [batch, {shape[1]}, {size}] float32 ({input}); output '{result.OutputName}' [{string.Join(", ", outputDims)}]");
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"verified: ONNX Runtime agrees with the network on a random {string.Join("x", result.VerifiedShape)} batch: relative difference {result.RelativeDifference:G3} (tolerance {options.Tolerance:G3})"));
        long bytes = new FileInfo(output).Length;
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"wrote {output} ({bytes / 1048576.0:F1} MB, opset {OnnxExporter.Opset}, {result.Model.Graph.Node.Count} nodes, {result.Model.Graph.Initializer.Count} initializers)"));
    }
}
