using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Cnn.Cli.Output;

/// <summary>One image's classification: its class probabilities and, when the model's raw outputs are known, its logits.</summary>
/// <param name="File">The image file as given on the command line.</param>
/// <param name="Probabilities">Softmax probabilities, one per class.</param>
/// <param name="Logits">Raw logits, or null (a saved pipeline outputs probabilities only).</param>
internal sealed record ImagePrediction(string File, float[] Probabilities, float[]? Logits);

/// <summary>Prints the top-K classes of each image as text or as one JSON object per line.</summary>
internal static class PredictionWriter
{
    /// <summary>Softmax of a logit vector, computed as torch does (max-shifted, float32 result).</summary>
    public static float[] Softmax(float[] logits)
    {
        double max = logits.Max();
        var exp = logits.Select(v => Math.Exp(v - max)).ToArray();
        double sum = exp.Sum();
        return exp.Select(e => (float)(e / sum)).ToArray();
    }

    /// <summary>The indices of the <paramref name="k"/> largest probabilities, highest first (ties: lower index first).</summary>
    public static int[] TopK(float[] probabilities, int k) =>
        Enumerable.Range(0, probabilities.Length)
            .OrderByDescending(i => probabilities[i]).ThenBy(i => i)
            .Take(Math.Min(k, probabilities.Length))
            .ToArray();

    /// <summary>Writes every prediction: a block per image, or a JSON line per image with <c>file</c>, <c>top</c> and the full vector.</summary>
    /// <param name="stdout">Output.</param>
    /// <param name="predictions">The predictions.</param>
    /// <param name="labels">Class names, or null to show indices only.</param>
    /// <param name="top">How many classes to show per image.</param>
    /// <param name="json">JSON lines instead of text.</param>
    public static void Write(TextWriter stdout, IReadOnlyList<ImagePrediction> predictions, IReadOnlyList<string>? labels, int top, bool json)
    {
        foreach (var prediction in predictions)
        {
            var best = TopK(prediction.Probabilities, top);
            if (json)
            {
                stdout.WriteLine(ToJson(prediction, best, labels));
                continue;
            }
            stdout.WriteLine(prediction.File);
            foreach (int i in best)
            {
                string name = labels is null ? $"class {i}" : $"{labels[i]} ({i})";
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {prediction.Probabilities[i],8:0.0000}  {name}"));
            }
        }
    }

    /// <summary>CSV: a header, then one row per image with its top-<paramref name="top"/> classes (index, label, probability).</summary>
    public static void WriteCsv(TextWriter stdout, IReadOnlyList<ImagePrediction> predictions, IReadOnlyList<string>? labels, int top)
    {
        int k = Math.Min(top, predictions.Count == 0 ? top : predictions[0].Probabilities.Length);
        stdout.WriteLine(string.Join(',', new[] { "file" }.Concat(Enumerable.Range(1, k).SelectMany(r => new[] { $"top{r}_index", $"top{r}_label", $"top{r}_probability" }))));
        foreach (var prediction in predictions)
        {
            var cells = new List<string> { Csv.Escape(prediction.File) };
            foreach (int i in TopK(prediction.Probabilities, k))
                cells.AddRange([i.ToString(CultureInfo.InvariantCulture), Csv.Escape(labels?[i] ?? ""), prediction.Probabilities[i].ToString("R", CultureInfo.InvariantCulture)]);
            stdout.WriteLine(string.Join(',', cells));
        }
    }

    private static string ToJson(ImagePrediction prediction, int[] best, IReadOnlyList<string>? labels)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("file", prediction.File);
            json.WriteStartArray("top");
            foreach (int i in best)
            {
                json.WriteStartObject();
                json.WriteNumber("index", i);
                if (labels is null) json.WriteNull("label");
                else json.WriteString("label", labels[i]);
                json.WriteNumber("probability", prediction.Probabilities[i]);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            if (prediction.Logits is { } logits) JsonVectors.Write(json, "logits", logits);
            else JsonVectors.Write(json, "probabilities", prediction.Probabilities);
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}

/// <summary>Float vectors in JSON, written with round-trip precision so that parsed values equal the computed ones.</summary>
internal static class JsonVectors
{
    /// <summary>Writes <paramref name="values"/> as a number array property.</summary>
    public static void Write(Utf8JsonWriter json, string name, IEnumerable<float> values)
    {
        json.WriteStartArray(name);
        foreach (float v in values) json.WriteNumberValue(v);
        json.WriteEndArray();
    }

    /// <summary>One JSON object per line: <c>{"file": ..., name: [...]}</c>.</summary>
    public static string Line(string file, string name, IEnumerable<float> values)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("file", file);
            Write(json, name, values);
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}

/// <summary>CSV cells (RFC 4180): quoted when they hold a comma, a quote or a line break.</summary>
internal static class Csv
{
    /// <summary>The cell text for <paramref name="value"/>.</summary>
    public static string Escape(string value) =>
        value.IndexOfAny([',', '"', '\n', '\r']) < 0 ? value : "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>A row of floats after a first text cell, with round-trip precision.</summary>
    public static string Row(string first, IEnumerable<float> values) =>
        string.Join(',', values.Select(v => v.ToString("R", CultureInfo.InvariantCulture)).Prepend(Escape(first)));
}
