using System.IO.Compression;
using Cnn.MLNet.Data;
using Cnn.MLNet.Mapping;
using Cnn.MLNet.Networks;
using Cnn.MLNet.Persistence;
using Microsoft.ML;
using Microsoft.ML.Data;
using static TorchSharp.torch;

namespace Cnn.MLNet.Scoring;

/// <summary>
/// A fitted CNN classifier: adds <c>Score</c> (class probabilities) and <c>PredictedLabel</c> (of the training label's key
/// type) to data with an image column. Lazy and batched in <see cref="Transform"/>; row by row in a prediction engine.
/// Save it with <see cref="CnnPipelineFile"/> (alone or inside a fitted pipeline).
/// </summary>
public sealed class CnnClassifierTransformer : ITransformer, IPersistentTransformer, IDisposable
{
    internal const string Kind = "cnn-classifier";
    private readonly ClassifierMapping _mapping;

    internal CnnClassifierTransformer(CnnNetwork network, LabelKeys labels, string imageColumn, string scoreColumn, string predictedLabelColumn, int batchSize)
    {
        Network = network;
        Labels = labels;
        _mapping = new ClassifierMapping(Labels, Probabilities, imageColumn, scoreColumn, predictedLabelColumn, batchSize, network.PrepareBatch, Probabilities);
    }

    /// <summary>The trained network: its backbone (<see cref="CnnNetwork.Model"/>), spec, and how it computes.</summary>
    public CnnNetwork Network { get; }

    internal LabelKeys Labels { get; }

    /// <summary>Registered architecture of the network.</summary>
    public string Architecture => Network.Architecture;

    /// <summary>Number of classes.</summary>
    public int NumClasses => Labels.Count;

    /// <summary>Class names (the label's key values), in score order.</summary>
    public IReadOnlyList<string> ClassNames => Labels.Names;

    /// <summary>Name of the image column the transformer reads.</summary>
    public string ImageColumnName => _mapping.InputColumnName;

    /// <summary>Name of the class-probability column the transformer adds (<c>Score</c> by default).</summary>
    public string ScoreColumnName => _mapping.ScoreColumn;

    /// <summary>Name of the predicted-class key column the transformer adds (<c>PredictedLabel</c> by default).</summary>
    public string PredictedLabelColumnName => _mapping.PredictedLabelColumn;

    /// <summary>
    /// This classifier as a pipeline of ML.NET's own transformers only (image resizing and pixel extraction, <c>ApplyOnnxModel</c> on
    /// the network exported to ONNX, the label mapping), which <c>mlContext.Model.Save</c> writes and any process with
    /// Microsoft.ML, Microsoft.ML.ImageAnalytics and Microsoft.ML.OnnxTransformer loads, without TorchSharp.
    /// See <see cref="Export.MLNetExport.ToOnnxPipeline(CnnClassifierTransformer, MLContext, Export.MLNetExportOptions?)"/>.
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="options">Export options; null for the defaults.</param>
    public Export.MLNetPipeline ToOnnxPipeline(MLContext mlContext, Export.MLNetExportOptions? options = null) =>
        Export.MLNetExport.ToOnnxPipeline(this, mlContext, options);

    /// <inheritdoc/>
    public bool IsRowToRowMapper => true;

    /// <inheritdoc/>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => BatchMappedSchema.Create(Checked(inputSchema), _mapping);

    /// <inheritdoc/>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new BatchRowToRowMapper(inputSchema, _mapping);

    /// <inheritdoc/>
    public IDataView Transform(IDataView input) => new BatchMappedDataView(input, _mapping);

    /// <summary>Class probabilities of a batch of images, [N, classes].</summary>
    internal float[] Probabilities(IReadOnlyList<ImageSample> images)
    {
        using var batch = Network.PrepareBatch(images);
        return Probabilities(batch);
    }

    /// <summary>Class probabilities of a prepared batch (<see cref="CnnNetwork.PrepareBatch"/>), [N, classes].</summary>
    internal float[] Probabilities(ImageBatch batch)
    {
        using var logits = Network.ForwardBatch(batch);
        using var probabilities = logits.softmax(1);
        return probabilities.data<float>().ToArray();
    }

    string IPersistentTransformer.StageKind => Kind;

    /// <summary>
    /// Not supported: ML.NET cannot load components from other assemblies, so <c>mlContext.Model.Save</c> could write a file
    /// nobody can read. Use <see cref="CnnPipelineFile.Save"/>, which stores the whole pipeline in one file, or convert the pipeline
    /// to ML.NET's own transformers with <see cref="Export.MLNetExport.ToOnnxPipeline(MLContext, ITransformer, DataViewSchema, Export.MLNetExportOptions?)"/>,
    /// which <c>mlContext.Model.Save</c> writes.
    /// </summary>
    void ICanSaveModel.Save(ModelSaveContext ctx) => throw new NotSupportedException(
        "A pipeline with a CNN stage cannot be saved with mlContext.Model.Save (ML.NET cannot load components from other assemblies). " +
        "To deploy with plain ML.NET (no TorchSharp), convert it to ML.NET's own transformers (ApplyOnnxModel on the exported network): " +
        "var plain = Cnn.MLNet.Export.MLNetExport.ToOnnxPipeline(mlContext, model, data.Schema); mlContext.Model.Save(plain.Model, plain.InputSchema, path) " +
        "(or 'cnn export --model-file model.zip --format mlnet -o plain.zip'). " +
        "To keep the TorchSharp network, use Cnn.MLNet.Persistence.CnnPipelineFile.Save(mlContext, model, data.Schema, path) and CnnPipelineFile.Load(mlContext, path, out schema).");

    /// <summary>Writes the network, its preprocessing and the label keys under <paramref name="prefix"/>.</summary>
    void IPersistentTransformer.Save(ZipArchive archive, string prefix)
    {
        NetworkFile.Save(Network, archive, prefix);
        using var writer = new StreamWriter(archive.CreateEntry(prefix + "classifier.json").Open());
        writer.Write(System.Text.Json.JsonSerializer.Serialize(new Stored(ImageColumnName, _mapping.ScoreColumn, _mapping.PredictedLabelColumn, _mapping.BatchSize, Labels.ToJson())));
    }

    internal static CnnClassifierTransformer Load(ZipArchive archive, string prefix)
    {
        var entry = archive.GetEntry(prefix + "classifier.json") ?? throw new InvalidDataException($"Model file: '{prefix}classifier.json' is missing.");
        Stored stored;
        using (var reader = new StreamReader(entry.Open()))
            stored = System.Text.Json.JsonSerializer.Deserialize<Stored>(reader.ReadToEnd()) ?? throw new InvalidDataException("Model file: empty classifier description.");
        var network = NetworkFile.Load(archive, prefix);
        return new CnnClassifierTransformer(network, LabelKeys.FromJson(stored.Labels), stored.ImageColumn, stored.ScoreColumn, stored.PredictedLabelColumn, stored.BatchSize);
    }

    /// <summary>Releases the network's native memory.</summary>
    public void Dispose() => Network.Dispose();

    private DataViewSchema Checked(DataViewSchema schema)
    {
        _mapping.CheckInput(schema);
        return schema;
    }

    private sealed record Stored(string ImageColumn, string ScoreColumn, string PredictedLabelColumn, int BatchSize, string Labels);
}
