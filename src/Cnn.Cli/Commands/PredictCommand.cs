using Cnn.Cli.Inference;
using Cnn.Cli.Output;

namespace Cnn.Cli.Commands;

/// <summary>
/// <c>cnn predict</c>: top-K classes of image files, from a registered model (optionally with a weight file) or from a
/// pipeline saved by <c>cnn train</c>.
/// </summary>
internal sealed class PredictCommand : ICliCommand
{
    public string Name => "predict";

    public string Summary => "top-K classes of images, from a model + weights or a model file saved by 'cnn train'";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        CommonOptions.Model("registered architecture (or --model-file)"),
        CommonOptions.ModelFile("a model saved by 'cnn train' or 'cnn distill' (or --model)"),
        CommonOptions.Weights("with --model: weights to load: " + CommonOptions.WeightsForms + "; without, the weights are random"),
        CommonOptions.Pretrained,
        new("--num-classes", "with --model: classes of the classifier (default: the weight file's, else 1000)", "N"),
        CommonOptions.CropPct,
        CommonOptions.InferenceImageSize,
        new("--labels", "with --model: a text file of class names, one per line, in class order (default: the pretrained weights' own, e.g. ImageNet's)", "<file>"),
        new("--top", "how many classes to print per image (default 5)", "K"),
        CommonOptions.BatchSize("with --model: images per forward pass (default 32; a model file batches as it was trained)"),
        .. ComputeOptions.InferenceOptions,
        CommonOptions.Json,
        CommonOptions.Csv,
    ];

    public string? Positionals => "<image or folder>...";

    public string Details =>
        "  --model: builds the registered model (classes from --num-classes, else the weight file's classifier, else 1000), loads the\n" +
        "    weights strictly and preprocesses per the model's pretrained config (resize to size/crop-pct, centre crop, normalise)\n" +
        "  --labels: a text file with one class name per line, in class order\n" +
        "  --json: one object per image and line: file, top [{index, label, probability}], and logits (--model) or probabilities (--model-file)";

    public int Run(CliArguments arguments, TextWriter stdout, TextWriter stderr)
    {
        ComputeOptions.Check(arguments);
        string? model = arguments.String("--model");
        string? modelFile = arguments.String("--model-file");
        string? weights = CommonOptions.WeightsOf(arguments);
        int? numClasses = arguments.OptionalInt("--num-classes", min: 1);
        double? cropPct = arguments.Double("--crop-pct", null, min: 0.01, max: 1);
        string? labelsPath = arguments.String("--labels");
        int top = arguments.Int("--top", 5, min: 1);
        int batchSize = arguments.Int("--batch-size", 32, min: 1);
        bool json = arguments.Flag("--json");
        bool csv = arguments.Flag("--csv");
        int? imageSize = arguments.OptionalInt("--image-size", min: 8, max: 4096);
        if (json && csv) throw new CliUsageException("give --json or --csv, not both");
        if ((model is null) == (modelFile is null))
            throw new CliUsageException("give either --model <name> or --model-file <model.zip>");
        if (modelFile is not null && (weights is not null || numClasses is not null || cropPct is not null || labelsPath is not null || imageSize is not null
            || arguments.Given("--batch-size")))
            throw new CliUsageException("--weights, --num-classes, --crop-pct, --image-size, --labels and --batch-size apply to --model only (a model file carries its own)");
        var files = ImageFiles.FromPositionals(arguments);
        var encoded = ImageFiles.ReadAll(files);

        IReadOnlyList<ImagePrediction> predictions;
        IReadOnlyList<string>? labels;
        if (modelFile is not null)
        {
            using var pipeline = PipelineModel.Load(modelFile);
            pipeline.UseCompute(arguments);
            var scored = pipeline.Model.Transform(pipeline.ViewOf(files, encoded));
            var scores = PipelineModel.Scores(scored);
            predictions = files.Select((f, i) => new ImagePrediction(f, scores[i], null)).ToArray();
            labels = pipeline.ClassNames;
            ComputeOptions.ReportEngine(pipeline.Classifier.Network, stderr);
        }
        else
        {
            string name = CliApp.RequireModel(model!);
            if (weights is null) BackboneRunner.WarnRandomWeights(stderr, name);
            using var runner = BackboneRunner.Create(name, weights, numClasses, cropPct, imageSize);
            runner.UseCompute(arguments);
            labels = labelsPath is null ? runner.Categories : LabelFile.Read(labelsPath, runner.NumClasses);
            var logits = runner.Logits(ImageFiles.ToSamples(files, encoded), batchSize);
            predictions = files.Select((f, i) => new ImagePrediction(f, PredictionWriter.Softmax(logits[i]), logits[i])).ToArray();
            ComputeOptions.ReportEngine(runner.Network, stderr);
        }
        if (csv) PredictionWriter.WriteCsv(stdout, predictions, labels, top);
        else PredictionWriter.Write(stdout, predictions, labels, top, json);
        return 0;
    }
}
