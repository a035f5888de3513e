using System.IO.Compression;
using System.Reflection;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Cnn.MLNet.Persistence;

/// <summary>A transformer of this library that stores itself inside a pipeline file.</summary>
internal interface IPersistentTransformer : ITransformer
{
    /// <summary>The stage kind written to the manifest; <see cref="CnnPipelineFile"/> finds the loader by it.</summary>
    string StageKind { get; }

    /// <summary>Writes the stage's files (configuration, network weights) under <paramref name="prefix"/>.</summary>
    void Save(ZipArchive archive, string prefix);
}

/// <summary>
/// Saves and loads a whole fitted pipeline — ML.NET transforms and this library's networks — as one zip file.
/// ML.NET's own loader cannot create components from other assemblies in Microsoft.ML 5 (its loadable-class machinery is
/// internal), so the file holds each run of ML.NET transforms as an ordinary ML.NET model (saved with
/// <c>mlContext.Model.Save</c>) and each network stage as JSON configuration plus safetensors weights, with a manifest
/// giving their order.
/// </summary>
public static partial class CnnPipelineFile
{
    private const string ManifestEntry = "manifest.json";
    private const string Format = "cnn-mlnet-pipeline";

    /// <summary>Saves <paramref name="model"/> (a fitted transformer or chain) and the schema it expects to <paramref name="path"/>.</summary>
    /// <remarks>
    /// The file is written to a temporary name beside it, flushed to the disk and renamed, so an existing file is never left
    /// half-written, even by a kill; the temporary files of saves that were killed are removed by the next save to the same path.
    /// A read-only file is not replaced unless <paramref name="overwriteReadOnly"/>.
    /// </remarks>
    /// <exception cref="IOException">The file is read-only and <paramref name="overwriteReadOnly"/> is off.</exception>
    public static void Save(MLContext mlContext, ITransformer model, DataViewSchema inputSchema, string path, bool overwriteReadOnly = false)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(inputSchema);
        AtomicFile.Write(path, overwriteReadOnly, temporary =>
        {
            using (var archive = ZipFile.Open(temporary, ZipArchiveMode.Create))
            {
                var stages = new List<StageEntry>();
                var pending = new List<ITransformer>();
                DataViewSchema schema = inputSchema, pendingSchema = inputSchema;
                void FlushPending()
                {
                    if (pending.Count == 0) return;
                    string entry = $"stage{stages.Count}.mlnet.zip";
                    var chain = new TransformerChain<ITransformer>(pending.ToArray());
                    using (var stream = archive.CreateEntry(entry, CompressionLevel.Fastest).Open())
                        mlContext.Model.Save(chain, pendingSchema, stream);
                    stages.Add(new StageEntry("mlnet", entry));
                    pending.Clear();
                }
                foreach (var stage in Stages(model))
                {
                    if (stage is IPersistentTransformer own)
                    {
                        FlushPending();
                        string prefix = $"stage{stages.Count}/";
                        own.Save(archive, prefix);
                        stages.Add(new StageEntry(own.StageKind, prefix));
                    }
                    else
                    {
                        if (pending.Count == 0) pendingSchema = schema;
                        pending.Add(stage);
                    }
                    schema = stage.GetOutputSchema(schema);
                }
                FlushPending();
                // An ML.NET model of no transforms still records the input schema for loading.
                string schemaEntry = "input-schema.mlnet.zip";
                using (var stream = archive.CreateEntry(schemaEntry, CompressionLevel.Fastest).Open())
                    mlContext.Model.Save(new TransformerChain<ITransformer>(), inputSchema, stream);
                var manifest = new Manifest(Format, 1, schemaEntry, stages);
                using var writer = archive.CreateEntry(ManifestEntry).Open();
                JsonSerializer.Serialize(writer, manifest, JsonOptions);
            }
        });
    }

    /// <summary>Loads a pipeline saved by <see cref="Save"/>; returns it as one transformer and gives the input schema it expects.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a Cnn.MLNet pipeline or is damaged (the inner exception, if any, is what the
    /// reader of the damaged part threw).</exception>
    public static ITransformer Load(MLContext mlContext, string path, out DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Model file '{path}' does not exist.", path);
        ZipArchive archive;
        try { archive = ZipFile.OpenRead(path); }
        catch (InvalidDataException ex) { throw new InvalidDataException($"'{path}' is not a Cnn.MLNet model file (not a zip archive: {ex.Message}).", ex); }
        using (archive)
        {
            try
            {
                return LoadStages(mlContext, archive, path, out inputSchema);
            }
            catch (Exception ex) when (ex is JsonException or FormatException or InvalidOperationException or ArgumentException or NotSupportedException
                                           or TargetInvocationException or TypeLoadException or Backbones.Weights.WeightLoadException
                                           or IOException)
            {
                // What the readers inside throw on damaged content: JSON; ML.NET's loader (FormatException, InvalidOperationException,
                // a component's constructor failing inside TargetInvocationException, a damaged type or assembly name: TypeLoadException,
                // FileLoadException, FileNotFoundException; a stream cut short: EndOfStreamException); a network spec that builds no
                // network (ArgumentException); the weights (WeightFileException, WeightLoadException).
                var cause = ex is TargetInvocationException { InnerException: { } inner } ? inner : ex;
                throw new InvalidDataException($"'{path}' is damaged: {cause.Message.ReplaceLineEndings(" ")}", ex);
            }
        }
    }

    private static ITransformer LoadStages(MLContext mlContext, ZipArchive archive, string path, out DataViewSchema inputSchema)
    {
        var manifestEntry = archive.GetEntry(ManifestEntry)
            ?? throw new InvalidDataException($"'{path}' is not a Cnn.MLNet model file: it has no {ManifestEntry}. Save models with CnnPipelineFile.Save or 'cnn train --output'.");
        Manifest manifest;
        using (var stream = manifestEntry.Open())
            manifest = JsonSerializer.Deserialize<Manifest>(stream, JsonOptions) ?? throw new InvalidDataException($"'{path}': empty manifest.");
        if (manifest.Format != Format || manifest.Version != 1)
            throw new InvalidDataException($"'{path}': unsupported model format '{manifest.Format}' version {manifest.Version}; this library reads '{Format}' version 1.");
        if (manifest.InputSchema is null || manifest.Stages is null || manifest.Stages.Any(s => s?.Kind is null || s.Entry is null))
            throw new InvalidDataException($"'{path}': the manifest lacks the input schema, the stages or a stage's kind or entry.");

        inputSchema = LoadMlNet(mlContext, archive, manifest.InputSchema, path, out _);
        var transformers = new List<ITransformer>();
        try
        {
            foreach (var stage in manifest.Stages)
            {
                if (stage.Kind == "mlnet")
                {
                    transformers.Add(LoadMlNetTransformer(mlContext, archive, stage.Entry, path));
                    continue;
                }
                transformers.Add(stage.Kind switch
                {
                    Scoring.CnnClassifierTransformer.Kind => Scoring.CnnClassifierTransformer.Load(archive, stage.Entry),
                    Features.CnnFeatureTransformer.Kind => Features.CnnFeatureTransformer.Load(archive, stage.Entry),
                    Clip.ClipZeroShotTransformer.Kind => Clip.ClipZeroShotTransformer.Load(archive, stage.Entry),
                    Clip.ClipImageEmbeddingTransformer.Kind => Clip.ClipImageEmbeddingTransformer.Load(archive, stage.Entry),
                    Clip.ClipTextEmbeddingTransformer.Kind => Clip.ClipTextEmbeddingTransformer.Load(archive, stage.Entry),
                    _ => throw new InvalidDataException($"'{path}': stage kind '{stage.Kind}' is unknown to this version of Cnn.MLNet."),
                });
            }
        }
        catch
        {
            foreach (var loaded in transformers) (loaded as IDisposable)?.Dispose();
            throw;
        }
        foreach (var transformer in transformers)
        {
            var network = transformer switch
            {
                Scoring.CnnClassifierTransformer classifier => classifier.Network,
                Features.CnnFeatureTransformer features => features.Network,
                _ => null,
            };
            if (network is not null) network.Log = mlContext; // Auto's engine choice goes to this context's log
        }
        return new TransformerChain<ITransformer>(transformers.ToArray());
    }

    /// <summary>The stages of a fitted pipeline in order, nested transformer chains opened up.</summary>
    public static IEnumerable<ITransformer> Stages(ITransformer model) =>
        model is IEnumerable<ITransformer> chain ? chain.SelectMany(Stages) : new[] { model };

    private static ITransformer LoadMlNetTransformer(MLContext mlContext, ZipArchive archive, string entry, string path)
    {
        LoadMlNet(mlContext, archive, entry, path, out var transformer);
        return transformer;
    }

    private static DataViewSchema LoadMlNet(MLContext mlContext, ZipArchive archive, string entry, string path, out ITransformer transformer)
    {
        var zipEntry = archive.GetEntry(entry) ?? throw new InvalidDataException($"'{path}': entry '{entry}' named in the manifest is missing.");
        // ML.NET's loader needs a seekable stream.
        using var buffer = new MemoryStream();
        using (var stream = zipEntry.Open()) stream.CopyTo(buffer);
        buffer.Position = 0;
        transformer = mlContext.Model.Load(buffer, out var schema);
        return schema;
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    private sealed record StageEntry(string Kind, string Entry);

    private sealed record Manifest(string Format, int Version, string InputSchema, List<StageEntry> Stages);
}
