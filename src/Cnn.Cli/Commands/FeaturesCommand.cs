using System.Globalization;
using Cnn.Cli.Inference;
using Cnn.Cli.Output;

namespace Cnn.Cli.Commands;

/// <summary><c>cnn features</c>: the pooled pre-logits vector of each image (<c>ForwardHead(ForwardFeatures(x), preLogits: true)</c>).</summary>
internal sealed class FeaturesCommand : ICliCommand
{
    private const int Preview = 6;

    public string Name => "features";

    public string Summary => "pooled pre-logits feature vector of images (text preview or full JSON)";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        CommonOptions.Model("registered architecture (or --model-file)"),
        CommonOptions.ModelFile("a model saved by 'cnn train' or 'cnn distill': its network's features (or --model)"),
        CommonOptions.Weights("with --model: weights to load: " + CommonOptions.WeightsForms + "; without, the weights are random"),
        CommonOptions.Pretrained,
        CommonOptions.CropPct,
        CommonOptions.InferenceImageSize,
        CommonOptions.BatchSize("images per forward pass (default 32)"),
        .. ComputeOptions.InferenceOptions,
        CommonOptions.Json,
        CommonOptions.Csv,
    ];

    public string? Positionals => "<image or folder>...";

    public int Run(CliArguments arguments, TextWriter stdout, TextWriter stderr)
    {
        ComputeOptions.Check(arguments);
        string? model = arguments.String("--model");
        string? modelFile = arguments.String("--model-file");
        string? weights = CommonOptions.WeightsOf(arguments);
        double? cropPct = arguments.Double("--crop-pct", null, min: 0.01, max: 1);
        int? imageSize = arguments.OptionalInt("--image-size", min: 8, max: 4096);
        int batchSize = arguments.Int("--batch-size", 32, min: 1);
        bool json = arguments.Flag("--json");
        bool csv = arguments.Flag("--csv");
        if (json && csv) throw new CliUsageException("give --json or --csv, not both");
        if ((model is null) == (modelFile is null))
            throw new CliUsageException("give either --model <name> or --model-file <model.zip>");
        if (modelFile is not null && (weights is not null || cropPct is not null || imageSize is not null))
            throw new CliUsageException("--weights, --crop-pct and --image-size apply to --model only (a model file carries its own)");
        string? name = model is null ? null : CliApp.RequireModel(model);
        var files = ImageFiles.FromPositionals(arguments);
        var encoded = ImageFiles.ReadAll(files);
        var samples = ImageFiles.ToSamples(files, encoded);

        float[][] features;
        if (modelFile is not null)
        {
            using var pipeline = PipelineModel.Load(modelFile);
            pipeline.UseCompute(arguments);
            features = pipeline.Features(samples, batchSize);
            ComputeOptions.ReportEngine(pipeline.Classifier.Network, stderr);
        }
        else
        {
            if (weights is null) BackboneRunner.WarnRandomWeights(stderr, name!);
            using var runner = BackboneRunner.Create(name!, weights, numClasses: null, cropPct, imageSize);
            runner.UseCompute(arguments);
            features = runner.Features(samples, batchSize);
            ComputeOptions.ReportEngine(runner.Network, stderr);
        }
        if (csv)
            stdout.WriteLine(string.Join(',', Enumerable.Range(0, features.FirstOrDefault()?.Length ?? 0).Select(j => $"f{j}").Prepend("file")));
        for (int i = 0; i < files.Count; i++)
        {
            if (json || csv)
            {
                stdout.WriteLine(json ? JsonVectors.Line(files[i], "features", features[i]) : Csv.Row(files[i], features[i]));
                continue;
            }
            string head = string.Join(", ", features[i].Take(Preview).Select(v => v.ToString("0.0000", CultureInfo.InvariantCulture)));
            string more = features[i].Length > Preview ? ", …" : "";
            stdout.WriteLine($"{files[i]}: [{head}{more}] (dim {features[i].Length})");
        }
        return 0;
    }
}
