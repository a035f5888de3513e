using System.IO.Compression;
using System.Text.Json;
using Cnn.Backbones.Clip;
using Cnn.Backbones.Weights;
using Cnn.MLNet.Data;
using Cnn.MLNet.Mapping;
using Cnn.MLNet.Persistence;
using Cnn.MLNet.Scoring;
using Microsoft.ML;
using Microsoft.ML.Data;
using static TorchSharp.torch;

namespace Cnn.MLNet.Clip;

/// <summary>
/// Zero-shot image classification with CLIP: adds <c>Score</c> (softmax over the labels of exp(logit_scale) · cosine
/// similarity between the image and each label's averaged prompt embedding) and <c>PredictedLabel</c> (a key whose key values
/// are the labels), so <c>mlContext.MulticlassClassification.Evaluate</c> works with no training. Lazy and batched.
/// Save it with <see cref="CnnPipelineFile.Save"/>.
/// </summary>
public sealed class ClipZeroShotTransformer : ITransformer, IPersistentTransformer, IDisposable
{
    internal const string Kind = "clip-zero-shot";
    private readonly ClassifierMapping _mapping;

    internal ClipZeroShotTransformer(ClipNetwork network, ClipZeroShotClassifier classifier, string imageColumn, string scoreColumn, string predictedLabelColumn, int batchSize)
    {
        Network = network;
        Classifier = classifier;
        Labels = LabelKeys.FromNames(classifier.Labels.Count, classifier.Labels);
        _mapping = new ClassifierMapping(Labels, Probabilities, imageColumn, scoreColumn, predictedLabelColumn, batchSize);
    }

    internal ClipNetwork Network { get; }

    internal LabelKeys Labels { get; }

    /// <summary>The class embeddings, labels and templates.</summary>
    public ClipZeroShotClassifier Classifier { get; }

    /// <summary>The CLIP model's name, e.g. <c>ViT-B-32</c>.</summary>
    public string ModelName => Network.ModelName;

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

    /// <summary>Class probabilities [N, labels], row-major, for <paramref name="images"/>.</summary>
    internal float[] Probabilities(IReadOnlyList<ImageSample> images)
    {
        var embeddings = Network.EncodeImages(images, normalize: true);
        using var scope = NewDisposeScope();
        var features = tensor(embeddings, [images.Count, Network.Model.Config.EmbedDim]);
        return Classifier.Logits(features).softmax(1).contiguous().data<float>().ToArray();
    }

    string IPersistentTransformer.StageKind => Kind;

    void IPersistentTransformer.Save(ZipArchive archive, string prefix)
    {
        Network.Save(archive, prefix);
        string temporary = Path.Combine(Path.GetTempPath(), $"cnn-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafeTensors.Write(temporary, [new KeyValuePair<string, Tensor>("weights", Classifier.Weights)]);
            archive.CreateEntryFromFile(temporary, prefix + "zero-shot.safetensors", CompressionLevel.Fastest);
        }
        finally
        {
            File.Delete(temporary);
        }
        using var stream = archive.CreateEntry(prefix + "zero-shot.json").Open();
        JsonSerializer.Serialize(stream, new Stored(Network.ModelName, Classifier.Labels.ToArray(), Classifier.Templates.ToArray(), Classifier.LogitScale,
            _mapping.InputColumnName, _mapping.ScoreColumn, _mapping.PredictedLabelColumn, _mapping.BatchSize));
    }

    /// <summary>Not supported (ML.NET 5 cannot load components from other assemblies): use <see cref="CnnPipelineFile.Save"/>.</summary>
    void ICanSaveModel.Save(ModelSaveContext ctx) => throw new NotSupportedException(
        "A pipeline with a CLIP stage cannot be saved with mlContext.Model.Save; use Cnn.MLNet.Persistence.CnnPipelineFile.Save.");

    internal static ClipZeroShotTransformer Load(ZipArchive archive, string prefix)
    {
        var entry = archive.GetEntry(prefix + "zero-shot.json") ?? throw new InvalidDataException($"Model file: '{prefix}zero-shot.json' is missing.");
        Stored stored;
        using (var stream = entry.Open())
            stored = JsonSerializer.Deserialize<Stored>(stream) ?? throw new InvalidDataException("Model file: empty zero-shot description.");
        var weightsEntry = archive.GetEntry(prefix + "zero-shot.safetensors") ?? throw new InvalidDataException($"Model file: '{prefix}zero-shot.safetensors' is missing.");
        string temporary = Path.Combine(Path.GetTempPath(), $"cnn-{Guid.NewGuid():N}.safetensors");
        var network = ClipNetworkLoad(archive, prefix, stored.ModelName);
        try
        {
            weightsEntry.ExtractToFile(temporary);
            using var weights = SafeTensors.Read(temporary);
            var w = weights["weights"];
            if (w.dim() != 2 || w.shape[0] != network.Model.Config.EmbedDim || w.shape[1] != stored.Labels.Length)
                throw new InvalidDataException($"Model file: the zero-shot weights [{string.Join(", ", w.shape)}] do not fit {stored.Labels.Length} labels of {stored.ModelName}.");
            var classifier = ClipZeroShotClassifier.FromWeights(stored.Labels, stored.Templates, w.to_type(ScalarType.Float32).clone(), stored.LogitScale);
            return new ClipZeroShotTransformer(network, classifier, stored.ImageColumn, stored.ScoreColumn, stored.PredictedLabelColumn, stored.BatchSize);
        }
        catch
        {
            network.Dispose();
            throw;
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    internal static ClipNetwork ClipNetworkLoad(ZipArchive archive, string prefix, string modelName)
    {
        try
        {
            return ClipNetwork.Load(archive, prefix, modelName);
        }
        catch (ClipWeightsException e)
        {
            throw new InvalidDataException($"Model file: {e.Message}", e);
        }
    }

    /// <summary>Releases the model's and the classifier's native memory.</summary>
    public void Dispose()
    {
        Classifier.Dispose();
        Network.Dispose();
    }

    private sealed record Stored(string ModelName, string[] Labels, string[] Templates, float LogitScale, string ImageColumn, string ScoreColumn,
        string PredictedLabelColumn, int BatchSize);
}
