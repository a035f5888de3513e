using System.Globalization;
using System.Text;
using System.Text.Json;
using Cnn.Cli.Data;
using Cnn.Cli.Inference;
using Cnn.MLNet.Data;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Cnn.Cli.Output;

/// <summary>
/// Evaluates scored data (a key <c>Label</c>, <c>Score</c>, <c>PredictedLabel</c>) with ML.NET's multiclass evaluator and
/// prints accuracy, log-loss, per-class precision/recall and the confusion matrix with class names.
/// </summary>
internal sealed class EvaluationReport
{
    private EvaluationReport(MulticlassClassificationMetrics metrics, IReadOnlyList<string> classNames, string source, int? topK)
    {
        Metrics = metrics;
        ClassNames = classNames;
        Source = source;
        TopK = topK;
    }

    /// <summary>The K of the top-K accuracy reported, or null for top-1 only.</summary>
    public int? TopK { get; }

    /// <summary>ML.NET's metrics.</summary>
    public MulticlassClassificationMetrics Metrics { get; }

    /// <summary>Class names in key order.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>What was evaluated, e.g. <c>Fashion-MNIST test (embedded subset)</c>.</summary>
    public string Source { get; }

    /// <summary>Rows evaluated.</summary>
    public long Count => (long)Metrics.ConfusionMatrix.Counts.Sum(row => row.Sum());

    /// <summary>Runs <c>mlContext.MulticlassClassification.Evaluate</c> on <paramref name="scored"/>.</summary>
    public static EvaluationReport Create(MLContext ml, IDataView scored, IReadOnlyList<string> classNames, string source, int? topK = null) =>
        new(ml.MulticlassClassification.Evaluate(scored, labelColumnName: "Label", scoreColumnName: "Score", predictedLabelColumnName: "PredictedLabel",
                topKPredictionCount: topK ?? 0),
            classNames, source, topK);

    /// <summary>
    /// Scores <paramref name="data"/> with a loaded pipeline and evaluates it; fails with one line when the data has classes the
    /// model does not know or the pipeline does not take the <c>Image</c> (bytes) and <c>Label</c> (text) columns.
    /// </summary>
    public static EvaluationReport Of(PipelineModel model, LabeledData data, int? topK = null)
    {
        if (model.ImageColumn != "Image" || model.LabelColumn != "Label")
            throw new InvalidDataException(
                $"the model takes columns '{model.ImageColumn}' and '{model.LabelColumn ?? "(no label)"}'; evaluation needs a pipeline on 'Image' and 'Label' as 'cnn train' saves.");
        var counts = data.Dataset.CountPerClass();
        model.CheckClasses(data.Dataset.ClassNames.Where((_, c) => counts[c] > 0).ToList(), data.Description);
        var scored = model.Model.Transform(ImageDataViews.ToDataView(model.Ml, data.Dataset));
        return Create(model.Ml, scored, model.ClassNames, data.Description, topK);
    }

    /// <summary>One line: accuracy and log-loss.</summary>
    public string Summary() =>
        FormattableString.Invariant($"{Source}: accuracy {100 * Metrics.MicroAccuracy:0.00}% (macro {100 * Metrics.MacroAccuracy:0.00}%)") +
        (TopK is { } k ? FormattableString.Invariant($", top-{k} accuracy {100 * Metrics.TopKAccuracy:0.00}%") : "") +
        FormattableString.Invariant($", log-loss {Metrics.LogLoss:0.0000}, {Count:N0} images");

    /// <summary>The summary, a per-class precision/recall table and the confusion matrix (rows: actual, columns: predicted).</summary>
    public void WriteText(TextWriter output)
    {
        var inv = CultureInfo.InvariantCulture;
        output.WriteLine(Summary());
        output.WriteLine();
        var cm = Metrics.ConfusionMatrix;
        int nameWidth = Math.Max("class".Length, ClassNames.Max(n => n.Length)) + 4;
        output.WriteLine($"{"class".PadRight(nameWidth)}{"precision",10}{"recall",10}{"count",8}");
        for (int c = 0; c < ClassNames.Count; c++)
        {
            string label = $"{c,2} {ClassNames[c]}";
            double support = cm.Counts[c].Sum();
            output.WriteLine(string.Create(inv, $"{label.PadRight(nameWidth)}{Percent(cm.PerClassPrecision[c]),10}{Percent(cm.PerClassRecall[c]),10}{support,8:0}"));
        }
        output.WriteLine();
        output.WriteLine("confusion matrix (rows: actual class, columns: predicted class)");
        int cell = Math.Max(5, cm.Counts.SelectMany(r => r).Select(v => v.ToString("0", inv).Length).DefaultIfEmpty(1).Max() + 1);
        var header = new StringBuilder("".PadRight(nameWidth));
        for (int c = 0; c < ClassNames.Count; c++) header.Append(c.ToString(inv).PadLeft(cell));
        output.WriteLine(header.ToString());
        for (int r = 0; r < ClassNames.Count; r++)
        {
            var line = new StringBuilder($"{r,2} {ClassNames[r]}".PadRight(nameWidth));
            foreach (double v in cm.Counts[r]) line.Append(v.ToString("0", inv).PadLeft(cell));
            output.WriteLine(line.ToString());
        }
    }

    /// <summary>
    /// What <c>cnn eval</c> prints: the JSON object or the text report on <paramref name="stdout"/>, and the confusion-matrix
    /// plot when <paramref name="plot"/> names a PNG (its path on stderr with JSON, else on stdout). Returns exit code 0.
    /// </summary>
    public int Write(bool json, string? plot, TextWriter stdout, TextWriter stderr)
    {
        if (json) WriteJson(stdout);
        else WriteText(stdout);
        if (plot is not null)
        {
            Plots.ConfusionMatrixPlot.Save(ClassNames, Metrics.ConfusionMatrix.Counts, plot);
            (json ? stderr : stdout).WriteLine($"confusion matrix: {Path.GetFullPath(plot)}");
        }
        return 0;
    }

    /// <summary>The metrics as one indented JSON object.</summary>
    public void WriteJson(TextWriter output)
    {
        var cm = Metrics.ConfusionMatrix;
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("data", Source);
            json.WriteNumber("count", Count);
            Number(json, "micro_accuracy", Metrics.MicroAccuracy);
            Number(json, "macro_accuracy", Metrics.MacroAccuracy);
            Number(json, "log_loss", Metrics.LogLoss);
            if (TopK is { } k)
            {
                json.WriteNumber("top_k", k);
                Number(json, "top_k_accuracy", Metrics.TopKAccuracy);
            }
            json.WriteStartArray("classes");
            for (int c = 0; c < ClassNames.Count; c++)
            {
                json.WriteStartObject();
                json.WriteNumber("index", c);
                json.WriteString("name", ClassNames[c]);
                Number(json, "precision", cm.PerClassPrecision[c]);
                Number(json, "recall", cm.PerClassRecall[c]);
                json.WriteNumber("count", cm.Counts[c].Sum());
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteStartArray("confusion_matrix");
            foreach (var row in cm.Counts)
            {
                json.WriteStartArray();
                foreach (double v in row) json.WriteNumberValue((long)v);
                json.WriteEndArray();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        output.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
    }

    private static string Percent(double value) => double.IsFinite(value) ? (100 * value).ToString("0.0", CultureInfo.InvariantCulture) + "%" : "n/a";

    private static void Number(Utf8JsonWriter json, string name, double value)
    {
        if (double.IsFinite(value)) json.WriteNumber(name, value);
        else json.WriteNull(name);
    }
}
