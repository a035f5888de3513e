using System.IO.Compression;
using System.Text.Json;
using Cnn.MLNet.Data;
using Cnn.MLNet.Mapping;
using Cnn.MLNet.Persistence;
using Cnn.MLNet.Networks;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Features;

/// <summary>
/// Adds a fixed-length <c>float</c> vector column (the backbone's pooled pre-logits) and, optionally, flattened stage maps to
/// data with an image column — features for downstream ML.NET trainers (LightGBM, SDCA, …). Lazy and batched.
/// </summary>
public sealed class CnnFeatureTransformer : ITransformer, IPersistentTransformer, IDisposable
{
    internal const string Kind = "cnn-features";
    private readonly FeatureMapping _mapping;

    internal CnnFeatureTransformer(CnnNetwork network, string imageColumn, string outputColumn, IReadOnlyList<int> stageIndices, int batchSize)
    {
        Network = network;
        StageIndices = stageIndices.ToArray();
        _mapping = new FeatureMapping(this, imageColumn, outputColumn, batchSize);
    }

    /// <summary>The network that extracts the features: its backbone (<see cref="CnnNetwork.Model"/>), spec, and how it computes.</summary>
    public CnnNetwork Network { get; }

    /// <summary>Stage maps added as extra columns (indices into the backbone's FeatureInfo).</summary>
    public IReadOnlyList<int> StageIndices { get; }

    /// <summary>Length of the pooled feature vector.</summary>
    public int NumFeatures => Network.Model.NumFeatures;

    /// <summary>Names of the added columns, pooled features first.</summary>
    public IReadOnlyList<string> OutputColumnNames => _mapping.OutputColumns.Select(c => c.Name).ToArray();

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
        NetworkFile.Save(Network, archive, prefix);
        using var stream = archive.CreateEntry(prefix + "features.json").Open();
        JsonSerializer.Serialize(stream, new Stored(_mapping.InputColumnName, _mapping.OutputColumns[0].Name, StageIndices.ToArray(), _mapping.BatchSize));
    }

    /// <summary>Not supported (ML.NET 5 cannot load components from other assemblies): use <see cref="CnnPipelineFile.Save"/>.</summary>
    void ICanSaveModel.Save(ModelSaveContext ctx) => throw new NotSupportedException(
        "A pipeline with a CNN stage cannot be saved with mlContext.Model.Save; use Cnn.MLNet.Persistence.CnnPipelineFile.Save.");

    internal static CnnFeatureTransformer Load(ZipArchive archive, string prefix)
    {
        var entry = archive.GetEntry(prefix + "features.json") ?? throw new InvalidDataException($"Model file: '{prefix}features.json' is missing.");
        Stored stored;
        using (var stream = entry.Open())
            stored = JsonSerializer.Deserialize<Stored>(stream) ?? throw new InvalidDataException("Model file: empty feature extractor description.");
        return new CnnFeatureTransformer(NetworkFile.Load(archive, prefix), stored.ImageColumn, stored.OutputColumn, stored.StageIndices, stored.BatchSize);
    }

    /// <summary>Releases the network's native memory.</summary>
    public void Dispose() => Network.Dispose();

    private sealed record Stored(string ImageColumn, string OutputColumn, int[] StageIndices, int BatchSize);

    private sealed class FeatureMapping : IBatchMapping
    {
        private readonly CnnFeatureTransformer _owner;
        private readonly long[][] _stageShapes;

        public FeatureMapping(CnnFeatureTransformer owner, string imageColumn, string outputColumn, int batchSize)
        {
            _owner = owner;
            InputColumnName = imageColumn;
            BatchSize = batchSize;
            var model = owner.Network.Model;
            foreach (int index in owner.StageIndices)
                if (index < 0 || index >= model.FeatureInfo.Count)
                    throw new ArgumentOutOfRangeException(nameof(owner), index,
                        $"Stage index {index} is out of range: {owner.Network.Architecture} has stages 0..{model.FeatureInfo.Count - 1} ({string.Join(", ", model.FeatureInfo.Select(f => f.ModuleName))}).");
            _stageShapes = StageShapes(owner);
            var columns = new List<OutputColumn> { new(outputColumn, new VectorDataViewType(NumberDataViewType.Single, model.NumFeatures), null) };
            for (int i = 0; i < owner.StageIndices.Count; i++)
            {
                var shape = _stageShapes[i];
                // C×H×W maps; a ViT block's tokens are (1 + L)×D.
                columns.Add(new OutputColumn($"{outputColumn}.stage{owner.StageIndices[i]}",
                    new VectorDataViewType(NumberDataViewType.Single, shape.Select(d => (int)d).ToArray()), null));
            }
            OutputColumns = columns;
        }

        public string InputColumnName { get; }

        public IReadOnlyList<OutputColumn> OutputColumns { get; }

        public int BatchSize { get; }

        public void CheckInput(DataViewSchema schema) => ImageColumns.Find(schema, InputColumnName);

        /// <summary>Shapes (C, H, W) of the requested stage maps at the network's input size, from one probe forward pass.</summary>
        private static long[][] StageShapes(CnnFeatureTransformer owner)
        {
            if (owner.StageIndices.Count == 0) return Array.Empty<long[]>();
            var network = owner.Network;
            var p = network.Preprocess;
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            network.Model.eval();
            var stages = network.Model.ForwardStages(zeros(new long[] { 1, p.Channels, p.Height, p.Width }, device: network.Device));
            return owner.StageIndices.Select(i => stages[i].shape[1..]).ToArray();
        }

        public IDisposable? Prepare(IReadOnlyList<ImageSample> images) => _owner.Network.PrepareBatch(images);

        public void Map(IReadOnlyList<ImageSample> images, float[][] outputs) => Map(images, null, outputs);

        public void Map(IReadOnlyList<ImageSample> images, IDisposable? prepared, float[][] outputs)
        {
            var network = _owner.Network;
            using var owned = prepared is ImageBatch ? null : network.PrepareBatch(images);
            var batch = owned ?? (ImageBatch)prepared!;
            if (_owner.StageIndices.Count == 0)
            {
                using var pooledOnly = network.ForwardBatch(batch, preLogits: true);
                pooledOnly.data<float>().CopyTo(outputs[0].AsSpan(0, images.Count * network.Model.NumFeatures));
                return;
            }
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var model = network.Model;
            network.PrepareForInference();
            var input = batch.ToTensor().to(network.Device);
            var (stages, features) = model.ForwardStagesAndFeatures(input);
            var pooled = model.ForwardHead(features, preLogits: true).to(CPU).contiguous();
            pooled.data<float>().CopyTo(outputs[0].AsSpan(0, images.Count * model.NumFeatures));
            for (int i = 0; i < _owner.StageIndices.Count; i++)
            {
                var map = stages[_owner.StageIndices[i]].to(CPU).contiguous();
                map.data<float>().CopyTo(outputs[i + 1].AsSpan(0, (int)map.numel()));
            }
        }
    }
}
