using System.IO.Compression;
using System.Text.Json;
using Cnn.MLNet.Data;
using Cnn.MLNet.Mapping;
using Cnn.MLNet.Persistence;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Cnn.MLNet.Clip;

/// <summary>
/// Adds CLIP image embeddings (a float vector of the model's embedding width, L2-normalised unless turned off) to data with
/// an image column: features for downstream trainers and for image–text search. Lazy and batched.
/// </summary>
public sealed class ClipImageEmbeddingTransformer : ITransformer, IPersistentTransformer, IDisposable
{
    internal const string Kind = "clip-image-embeddings";
    private readonly Mapping _mapping;

    internal ClipImageEmbeddingTransformer(ClipNetwork network, string imageColumn, string outputColumn, bool normalize, int batchSize)
    {
        Network = network;
        Normalize = normalize;
        _mapping = new Mapping(this, imageColumn, outputColumn, batchSize);
    }

    internal ClipNetwork Network { get; }

    /// <summary>Whether the embeddings are L2-normalised.</summary>
    public bool Normalize { get; }

    /// <summary>Embedding width.</summary>
    public int EmbeddingSize => Network.Model.Config.EmbedDim;

    /// <inheritdoc/>
    public bool IsRowToRowMapper => true;

    /// <inheritdoc/>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        _mapping.CheckInput(inputSchema);
        return BatchMappedSchema.Create(inputSchema, _mapping);
    }

    /// <inheritdoc/>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new BatchRowToRowMapper(inputSchema, _mapping);

    /// <inheritdoc/>
    public IDataView Transform(IDataView input) => new BatchMappedDataView(input, _mapping);

    string IPersistentTransformer.StageKind => Kind;

    void IPersistentTransformer.Save(ZipArchive archive, string prefix)
    {
        Network.Save(archive, prefix);
        using var stream = archive.CreateEntry(prefix + "clip-image.json").Open();
        JsonSerializer.Serialize(stream, new Stored(Network.ModelName, _mapping.InputColumnName, _mapping.OutputColumns[0].Name, Normalize, _mapping.BatchSize));
    }

    /// <summary>Not supported (ML.NET 5 cannot load components from other assemblies): use <see cref="CnnPipelineFile.Save"/>.</summary>
    void ICanSaveModel.Save(ModelSaveContext ctx) => throw new NotSupportedException(
        "A pipeline with a CLIP stage cannot be saved with mlContext.Model.Save; use Cnn.MLNet.Persistence.CnnPipelineFile.Save.");

    internal static ClipImageEmbeddingTransformer Load(ZipArchive archive, string prefix)
    {
        var entry = archive.GetEntry(prefix + "clip-image.json") ?? throw new InvalidDataException($"Model file: '{prefix}clip-image.json' is missing.");
        Stored stored;
        using (var stream = entry.Open())
            stored = JsonSerializer.Deserialize<Stored>(stream) ?? throw new InvalidDataException("Model file: empty CLIP embedding description.");
        var network = ClipZeroShotTransformer.ClipNetworkLoad(archive, prefix, stored.ModelName);
        return new ClipImageEmbeddingTransformer(network, stored.ImageColumn, stored.OutputColumn, stored.Normalize, stored.BatchSize);
    }

    /// <summary>Releases the model's native memory.</summary>
    public void Dispose() => Network.Dispose();

    private sealed record Stored(string ModelName, string ImageColumn, string OutputColumn, bool Normalize, int BatchSize);

    private sealed class Mapping(ClipImageEmbeddingTransformer owner, string imageColumn, string outputColumn, int batchSize) : IBatchMapping
    {
        public string InputColumnName { get; } = imageColumn;

        public IReadOnlyList<OutputColumn> OutputColumns { get; } =
            [new OutputColumn(outputColumn, new VectorDataViewType(NumberDataViewType.Single, owner.EmbeddingSize), null)];

        public int BatchSize { get; } = batchSize;

        public void CheckInput(DataViewSchema schema) => ImageColumns.Find(schema, InputColumnName);

        public void Map(IReadOnlyList<ImageSample> images, float[][] outputs) =>
            owner.Network.EncodeImages(images, owner.Normalize).AsSpan().CopyTo(outputs[0]);
    }
}
