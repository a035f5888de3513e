using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

// Usage: PlainMLNet <model.zip> <images.tsv> <result.json>
// images.tsv: one image per line, "path<TAB>label" (the label may be empty). Loads the model with mlContext.Model.Load,
// predicts every image with a prediction engine and with Transform + MulticlassClassification.Evaluate, and writes the scores,
// the predicted classes, the score column's slot names, the predicted label's key values, the metrics and the loaded assemblies.
// Exit 3 when a TorchSharp or Cnn assembly is loaded: this process must not need them.
if (args.Length != 3)
{
    Console.Error.WriteLine("usage: PlainMLNet <model.zip> <images.tsv> <result.json>");
    return 2;
}

var ml = new MLContext(seed: 0);
var model = ml.Model.Load(args[0], out _);
var rows = File.ReadAllLines(args[1]).Where(l => l.Length > 0).Select(l => l.Split('\t')).Select(p => (Path: p[0], Label: p.Length > 1 ? p[1] : "")).ToList();

// Row by row, as a server or Model Builder's consumption code does.
using var engine = ml.Model.CreatePredictionEngine<ModelInput, ModelOutput>(model);
var scores = new List<float[]>(rows.Count);
var predicted = new List<string>(rows.Count);
foreach (var (path, label) in rows)
{
    using var image = MLImage.CreateFromFile(path);
    var output = engine.Predict(new ModelInput { Image = image, Label = label });
    scores.Add(output.Score.ToArray());
    predicted.Add(output.PredictedClass);
}

var outputSchema = engine.OutputSchema;
VBuffer<ReadOnlyMemory<char>> slotNames = default, keyValues = default;
outputSchema["Score"].GetSlotNames(ref slotNames);
outputSchema["PredictedLabel"].GetKeyValues(ref keyValues);

// The whole set through Transform and ML.NET's own evaluator (needs PredictedLabel as a key with the label's key values).
double? macroAccuracy = null, microAccuracy = null;
if (rows.All(r => r.Label.Length > 0))
{
    var images = rows.Select(r => new ModelInput { Image = MLImage.CreateFromFile(r.Path), Label = r.Label }).ToList();
    var metrics = ml.MulticlassClassification.Evaluate(model.Transform(ml.Data.LoadFromEnumerable(images)));
    macroAccuracy = metrics.MacroAccuracy;
    microAccuracy = metrics.MicroAccuracy;
    foreach (var input in images) input.Image.Dispose();
}

var assemblies = AppDomain.CurrentDomain.GetAssemblies().Select(a => a.GetName().Name ?? "").OrderBy(n => n, StringComparer.Ordinal).ToArray();
var result = new
{
    Scores = scores,
    Predicted = predicted,
    SlotNames = slotNames.DenseValues().Select(v => v.ToString()).ToArray(),
    KeyValues = keyValues.DenseValues().Select(v => v.ToString()).ToArray(),
    MacroAccuracy = macroAccuracy,
    MicroAccuracy = microAccuracy,
    Assemblies = assemblies,
};
File.WriteAllText(args[2], JsonSerializer.Serialize(result));
var forbidden = assemblies.Where(n => n.StartsWith("TorchSharp", StringComparison.OrdinalIgnoreCase) || n.StartsWith("Cnn.", StringComparison.Ordinal)).ToArray();
if (forbidden.Length > 0)
{
    Console.Error.WriteLine($"loaded assemblies this process must not need: {string.Join(", ", forbidden)}");
    return 3;
}
Console.WriteLine($"{rows.Count} images predicted; {assemblies.Length} assemblies loaded, none of TorchSharp or Cnn");
return 0;

/// <summary>The model's input: what 'cnn export --format mlnet' writes in its consumption code.</summary>
public sealed class ModelInput
{
    /// <summary>The decoded image.</summary>
    [ColumnName("Image")]
    [ImageType(28, 28)] // ML.NET needs a size here; images of any size are resized by the model
    public MLImage Image { get; set; } = null!;

    /// <summary>The class name (empty when unknown).</summary>
    [ColumnName("Label")]
    public string Label { get; set; } = "";
}

/// <summary>The columns the model adds.</summary>
public sealed class ModelOutput
{
    /// <summary>Class probabilities.</summary>
    [ColumnName("Score")]
    public float[] Score { get; set; } = [];

    /// <summary>The predicted class name (cnn train's MapKeyToValue of PredictedLabel).</summary>
    [ColumnName("PredictedClass")]
    public string PredictedClass { get; set; } = "";
}
