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

    private ClipNetwork(ClipModel model)
    {
        Model = model;
        Preprocess = PreprocessFor(model.Config);
    }

    /// <summary>The CLIP model (image and text towers, <c>logit_scale</c>).</summary>
    public ClipModel Model { get; }

    /// <summary>OpenCLIP's name of the model, e.g. <c>ViT-B-32</c>.</summary>
    public string ModelName => Model.Config.Name;

    /// <summary>The image preprocessing the model is fed with (<see cref="PreprocessFor"/>).</summary>
    public PreprocessOptions Preprocess { get; }

    /// <summary>OpenCLIP's evaluation transform: bicubic resize of the shorter side, centre crop, CLIP's mean and std.</summary>
    public static PreprocessOptions PreprocessFor(ClipModelConfig config) => new()
    {
        Height = config.Vision.ImageSize,
        Width = config.Vision.ImageSize,
        CropPct = 1.0,
        Interpolation = ResizeInterpolation.Bicubic,
        Mean = Backbones.Models.PretrainedConfig.ClipMean.Select(v => (float)v).ToArray(),
        Std = Backbones.Models.PretrainedConfig.ClipStd.Select(v => (float)v).ToArray(),
    };

    /// <summary>Builds the named model and loads its weights (random weights when <paramref name="weightsPath"/> is null).</summary>
    public static ClipNetwork Create(string modelName, string? weightsPath)
    {
        var model = ClipModel.Create(modelName);
        try
        {
            if (weightsPath is not null) model.LoadWeights(Backbones.Weights.PretrainedWeights.ResolveOpenClip(weightsPath));
            model.eval();
            return new ClipNetwork(model);
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
            var model = ClipModel.Create(modelName);
            try
            {
                using var weights = SafeTensors.Read(temporary);
                model.LoadWeights(weights, $"the model file's {prefix}clip.safetensors");
                model.eval();
                return new ClipNetwork(model);
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

    /// <summary>Releases the model's tensors.</summary>
    public void Dispose() => Model.Dispose();
}
