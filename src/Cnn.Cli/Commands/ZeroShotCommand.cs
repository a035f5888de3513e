using System.Globalization;
using System.Text;
using System.Text.Json;
using Cnn.Backbones.Clip;
using Cnn.Cli.Inference;
using Cnn.MLNet.Clip;
using static TorchSharp.torch;

namespace Cnn.Cli.Commands;

/// <summary><c>cnn zero-shot</c>: classifies images into text labels with a CLIP model, no training.</summary>
internal sealed class ZeroShotCommand : ICliCommand
{
    public string Name => "zero-shot";

    public string Summary => "classify images into text labels with a CLIP model (OpenCLIP checkpoint), no training";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        ClipCli.Model,
        ClipCli.Weights,
        ClipCli.Labels("required"),
        ClipCli.Template,
        new("--top", "classes shown per image (default 5, at most the number of labels)", "K", "-k"),
        ClipCli.BatchSize,
        CommonOptions.Json,
    ];

    public string? Positionals => "<image or folder>...";

    public string Details =>
        "Each label's prompts (every template with {} replaced by the label) are embedded, averaged and normalised, as OpenCLIP's\n" +
        "build_zero_shot_classifier does; probabilities are the softmax of exp(logit_scale) x cosine similarity.\n" +
        "OpenAI's original checkpoints need the -quickgelu model names (e.g. ViT-B-32-quickgelu).";

    public int Run(CliArguments arguments, TextWriter stdout, TextWriter stderr)
    {
        string model = ClipCli.ModelName(arguments);
        var labels = ClipCli.LabelsOf(arguments) ?? throw new CliUsageException("missing required option --labels (e.g. --labels \"cat,dog,car\")");
        var templates = ClipCli.TemplatesOf(arguments);
        ClipCli.CheckPrompts(labels, templates);
        int top = Math.Min(arguments.Int("--top", 5, min: 1), labels.Length);
        int batchSize = arguments.Int("--batch-size", 16, min: 1);
        bool json = arguments.Flag("--json");
        string? weights = ClipCli.WeightsPath(arguments, model, stderr);
        var files = ImageFiles.FromPositionals(arguments);
        var samples = ImageFiles.ToSamples(files, ImageFiles.ReadAll(files));

        using var network = ClipNetwork.Create(model, weights);
        using var classifier = ClipZeroShotClassifier.Build(network.Model, labels, templates, w => stderr.WriteLine($"cnn: warning: {w}"));
        var embeddings = ClipCli.EncodeImages(network, samples, batchSize);
        for (int i = 0; i < files.Count; i++)
        {
            float[] probabilities;
            using (var scope = NewDisposeScope())
                probabilities = classifier.Logits(tensor(embeddings[i], [1, embeddings[i].Length])).softmax(1).data<float>().ToArray();
            var best = Enumerable.Range(0, labels.Length).OrderByDescending(c => probabilities[c]).ThenBy(c => c).Take(top).ToArray();
            stdout.WriteLine(json ? JsonLine(files[i], best.Select(c => (labels[c], probabilities[c])))
                : $"{files[i]}: {string.Join(", ", best.Select(c => $"{labels[c]} {probabilities[c].ToString("0.000", CultureInfo.InvariantCulture)}"))}");
        }
        return 0;
    }

    private static string JsonLine(string file, IEnumerable<(string Label, float Probability)> top)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("file", file);
            json.WriteStartArray("top");
            foreach (var (label, probability) in top)
            {
                json.WriteStartObject();
                json.WriteString("label", label);
                json.WriteNumber("probability", probability);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}
