using System.Globalization;
using Cnn.Cli.Inference;
using Cnn.Cli.Output;
using Cnn.MLNet.Clip;

namespace Cnn.Cli.Commands;

/// <summary><c>cnn embed</c>: CLIP embeddings of texts (<c>--text</c>) or images, L2-normalised.</summary>
internal sealed class EmbedCommand : ICliCommand
{
    private const int Preview = 6;

    public string Name => "embed";

    public string Summary => "CLIP embeddings (L2-normalised) of a text (--text) or of images";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        ClipCli.Model,
        ClipCli.Weights,
        new("--text", "embed this text instead of images; separate several with '|'", "<text>"),
        ClipCli.BatchSize,
        CommonOptions.Json,
    ];

    public string? Positionals => "[<image or folder>...]";

    public int Run(CliArguments arguments, TextWriter stdout, TextWriter stderr)
    {
        string model = ClipCli.ModelName(arguments);
        string? text = arguments.String("--text");
        bool json = arguments.Flag("--json");
        int batchSize = arguments.Int("--batch-size", 16, min: 1);
        if (text is not null && arguments.Positionals.Count > 0)
            throw new CliUsageException("give either --text or images, not both");
        if (text is null && arguments.Positionals.Count == 0)
            throw new CliUsageException("give --text \"...\" or at least one image file or folder");
        string? weights = ClipCli.WeightsPath(arguments, model, stderr);
        IReadOnlyList<string> names;
        float[][] vectors;
        if (text is not null)
        {
            var texts = text.Split('|', StringSplitOptions.TrimEntries);
            if (texts.Any(t => t.Length == 0)) throw new CliUsageException("--text holds an empty text");
            using var network = ClipNetwork.Create(model, weights);
            int dim = network.Model.Config.EmbedDim;
            var flat = network.EncodeTexts(texts, normalize: true, w => stderr.WriteLine($"cnn: warning: {w}"));
            vectors = Enumerable.Range(0, texts.Length).Select(i => flat.AsSpan(i * dim, dim).ToArray()).ToArray();
            names = texts;
        }
        else
        {
            var files = ImageFiles.FromPositionals(arguments);
            var samples = ImageFiles.ToSamples(files, ImageFiles.ReadAll(files));
            using var network = ClipNetwork.Create(model, weights);
            vectors = ClipCli.EncodeImages(network, samples, batchSize);
            names = files;
        }
        for (int i = 0; i < names.Count; i++)
        {
            if (json)
            {
                stdout.WriteLine(JsonLine(text is null ? "file" : "text", names[i], vectors[i]));
                continue;
            }
            string head = string.Join(", ", vectors[i].Take(Preview).Select(v => v.ToString("0.0000", CultureInfo.InvariantCulture)));
            stdout.WriteLine($"{names[i]}: [{head}, …] (dim {vectors[i].Length})");
        }
        return 0;
    }

    private static string JsonLine(string key, string name, float[] vector)
    {
        using var buffer = new MemoryStream();
        using (var json = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString(key, name);
            JsonVectors.Write(json, "embedding", vector);
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }
}
