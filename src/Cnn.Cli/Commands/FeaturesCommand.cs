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
        CommonOptions.Model(),
        CommonOptions.Weights(),
        CommonOptions.CropPct,
        CommonOptions.BatchSize("images per forward pass (default 32)"),
        CommonOptions.Json,
    ];

    public string? Positionals => "<image>...";

    public int Run(CliArguments arguments, TextWriter stdout, TextWriter stderr)
    {
        string model = CliApp.RequireModel(arguments.Required("--model"));
        string? weights = arguments.String("--weights");
        double? cropPct = arguments.Double("--crop-pct", null, min: 0.01, max: 1);
        int batchSize = arguments.Int("--batch-size", 32, min: 1);
        bool json = arguments.Flag("--json");
        var files = ImageFiles.FromPositionals(arguments);
        var encoded = ImageFiles.ReadAll(files);
        if (weights is null) BackboneRunner.WarnRandomWeights(stderr, model);

        using var runner = BackboneRunner.Create(model, weights, numClasses: null, cropPct);
        var features = runner.Features(ImageFiles.ToSamples(files, encoded), batchSize);
        for (int i = 0; i < files.Count; i++)
        {
            if (json)
            {
                stdout.WriteLine(JsonVectors.Line(files[i], "features", features[i]));
                continue;
            }
            string head = string.Join(", ", features[i].Take(Preview).Select(v => v.ToString("0.0000", CultureInfo.InvariantCulture)));
            string more = features[i].Length > Preview ? ", …" : "";
            stdout.WriteLine($"{files[i]}: [{head}{more}] (dim {features[i].Length})");
        }
        return 0;
    }
}
