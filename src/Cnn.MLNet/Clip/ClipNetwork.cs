using System.IO.Compression;
using Cnn.Backbones.Clip;
using Cnn.Backbones.Weights;
using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using static TorchSharp.torch;

namespace Cnn.MLNet.Clip;

/// <summary>A loaded CLIP model with its image preprocessing; stores itself in a pipeline file (<c>clip.safetensors</c>).</summary>
public sealed class ClipNetwork : IDisposable
{
    private readonly object _gate = new();
    private ImageBatcher? _batcher;

    private ClipNetwork(ClipModel model, ClipPreprocessConfig preprocess)
    {
        Model = model;
        PreprocessConfig = preprocess;
        Preprocess = PreprocessFor(model.Config, preprocess);
    }

    /// <summary>The CLIP model (image and text towers, <c>logit_scale</c>).</summary>
    public ClipModel Model { get; }

    /// <summary>OpenCLIP's name of the model, e.g. <c>ViT-B-32</c>.</summary>
    public string ModelName => Model.Config.Name;

    /// <summary>The image preprocessing the model is fed with (<see cref="PreprocessFor(ClipModelConfig, ClipPreprocessConfig)"/>).</summary>
    public PreprocessOptions Preprocess { get; }

    /// <summary>The preprocessing as OpenCLIP states it (<c>preprocess_cfg</c>): CLIP's own, or what a hub configuration gives.</summary>
    public ClipPreprocessConfig PreprocessConfig { get; }

    /// <summary>OpenCLIP's evaluation transform: bicubic resize of the shorter side, centre crop, CLIP's mean and std.</summary>
    public static PreprocessOptions PreprocessFor(ClipModelConfig config) => PreprocessFor(config, ClipPreprocessConfig.OpenAi);

    /// <summary>
    /// OpenCLIP's evaluation transform for <paramref name="preprocess"/> (<c>preprocess_cfg</c>): resize of the shorter side
    /// (bicubic, or bilinear where it says so), centre crop to the image tower's size, its mean and std.
    /// </summary>
    public static PreprocessOptions PreprocessFor(ClipModelConfig config, ClipPreprocessConfig preprocess)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(preprocess);
        return new()
        {
            Height = config.Vision.ImageSize,
            Width = config.Vision.ImageSize,
            CropPct = 1.0,
            Interpolation = preprocess.Bilinear ? ResizeInterpolation.Bilinear : ResizeInterpolation.Bicubic,
            Mean = preprocess.Mean.ToArray(),
            Std = preprocess.Std.ToArray(),
        };
    }

    /// <summary>
    /// Builds the model and loads its weights (random weights when there are none): <paramref name="modelName"/> is a name of
    /// <see cref="ClipModels"/> or an <c>hf-hub:</c> name whose <c>open_clip_config.json</c> gives the model and preprocessing
    /// (see <see cref="ClipModelSource.Resolve"/>).
    /// </summary>
    public static ClipNetwork Create(string modelName, string? weightsPath) => Create(ClipModelSource.Resolve(modelName, weightsPath));

    /// <summary>Builds a resolved model and loads its weights (random weights when it has none).</summary>
    public static ClipNetwork Create(ClipModelSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var model = ClipModel.Create(source.Config.Model);
        try
        {
            if (source.WeightsPath is not null) model.LoadWeights(source.WeightsPath);
            model.eval();
            return new ClipNetwork(model, source.Config.Preprocess);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Image embeddings [N, EmbedDim], row-major.</summary>
    public float[] EncodeImages(IReadOnlyList<ImageSample> images, bool normalize)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        Tensor pixels;
        lock (_gate)
        {
            var batcher = _batcher;
            if (batcher is null || batcher.Options.BatchSize < images.Count)
                _batcher = batcher = new ImageBatcher(new ImagePreprocessor(Preprocess), new ImageBatcherOptions { BatchSize = Math.Max(images.Count, 1) });
            using var batch = batcher.CreateBatch(images, Enumerable.Range(0, images.Count).ToArray());
            pixels = batch.ToTensor();
        }
        lock (_gate) return Model.EncodeImage(pixels, normalize).contiguous().data<float>().ToArray();
    }

    /// <summary>Text embeddings [N, EmbedDim], row-major.</summary>
    public float[] EncodeTexts(IReadOnlyList<string> texts, bool normalize, Action<string>? warn)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        lock (_gate) return Model.EncodeText(texts, normalize, warn).contiguous().data<float>().ToArray();
    }

    /// <summary>Writes the model's weights into a pipeline file's archive as <c>&lt;prefix&gt;clip.safetensors</c>.</summary>
    /// <param name="archive">The archive being written.</param>
    /// <param name="prefix">The entry-name prefix of this stage.</param>
    internal void Save(ZipArchive archive, string prefix)
    {
        string temporary = Path.Combine(Path.GetTempPath(), $"cnn-{Guid.NewGuid():N}.safetensors");
        try
        {
            using (var weights = StateDict.FromModule(Model))
                SafeTensors.Write(temporary, weights, new Dictionary<string, string> { ["clip_model"] = ModelName });
            archive.CreateEntryFromFile(temporary, prefix + "clip.safetensors", CompressionLevel.Fastest);
            using var config = new StreamWriter(archive.CreateEntry(prefix + ConfigEntry, CompressionLevel.Fastest).Open());
            config.Write(new OpenClipConfig(Model.Config, PreprocessConfig).ToJson());
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    /// <summary>Reads a model written by <see cref="Save"/>.</summary>
    /// <exception cref="InvalidDataException">The entry is missing or damaged.</exception>
    internal static ClipNetwork Load(ZipArchive archive, string prefix, string modelName)
    {
        var entry = archive.GetEntry(prefix + "clip.safetensors") ?? throw new InvalidDataException($"Model file: '{prefix}clip.safetensors' is missing.");
        string temporary = Path.Combine(Path.GetTempPath(), $"cnn-{Guid.NewGuid():N}.safetensors");
        try
        {
            entry.ExtractToFile(temporary);
            var config = ReadConfig(archive, prefix, modelName);
            var model = ClipModel.Create(config.Model);
            try
            {
                using var weights = SafeTensors.Read(temporary);
                model.LoadWeights(weights, $"the model file's {prefix}clip.safetensors");
                model.eval();
                return new ClipNetwork(model, config.Preprocess);
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    // The model and preprocessing configuration (OpenCLIP's open_clip_config.json); files written before it name a ClipModels entry.
    private const string ConfigEntry = "clip_config.json";

    private static OpenClipConfig ReadConfig(ZipArchive archive, string prefix, string modelName)
    {
        if (archive.GetEntry(prefix + ConfigEntry) is not { } entry)
            return ClipModels.Contains(modelName)
                ? new OpenClipConfig(ClipModels.Get(modelName), ClipPreprocessConfig.OpenAi)
                : throw new InvalidDataException($"Model file: '{prefix}{ConfigEntry}' is missing and '{modelName}' is not a known CLIP model.");
        using var reader = new StreamReader(entry.Open());
        try
        {
            return OpenClipConfig.Parse(reader.ReadToEnd(), $"the model file's {prefix}{ConfigEntry}", modelName);
        }
        catch (ClipConfigException e)
        {
            throw new InvalidDataException($"Model file: {e.Message}", e);
        }
    }

    /// <summary>Releases the model's tensors.</summary>
    public void Dispose() => Model.Dispose();
}
