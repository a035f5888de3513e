using System.IO.Compression;
using System.Text.Json;
using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.Backbones.Weights;
using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Scoring;

/// <summary>
/// A backbone together with everything needed to feed it: its architecture name, construction options, evaluation
/// preprocessing and device. Runs batched eval-mode forward passes and stores itself as JSON + safetensors.
/// </summary>
internal sealed class CnnNetwork : IDisposable
{
    private readonly object _gate = new();
    private ImageBatcher? _batcher;

    public CnnNetwork(string architecture, ModelOptions modelOptions, PreprocessOptions preprocess, Backbone model, Device device)
    {
        Architecture = architecture;
        ModelOptions = modelOptions;
        Preprocess = preprocess;
        Model = model;
        Device = device;
    }

    /// <summary>Registered architecture name.</summary>
    public string Architecture { get; }

    /// <summary>Options the backbone was built with (weights path cleared).</summary>
    public ModelOptions ModelOptions { get; }

    /// <summary>Evaluation preprocessing (resize, crop, normalisation).</summary>
    public PreprocessOptions Preprocess { get; }

    /// <summary>The network.</summary>
    public Backbone Model { get; }

    /// <summary>Where the network runs.</summary>
    public Device Device { get; }

    /// <summary>Builds the network on <paramref name="device"/>, loading <c>modelOptions.WeightsPath</c> when set.</summary>
    public static CnnNetwork Create(string architecture, ModelOptions modelOptions, PreprocessOptions preprocess, Device device)
    {
        TorchRuntime.EnsureLoaded();
        var model = ModelRegistry.Create(architecture, modelOptions);
        model.to(device);
        return new CnnNetwork(architecture, modelOptions with { WeightsPath = null }, preprocess, model, device);
    }

    private static readonly object SeedGate = new();

    /// <summary>
    /// <see cref="Create"/> with TorchSharp's global generator seeded with <paramref name="seed"/> first, under a process-wide lock:
    /// weight initialisation draws from that one generator, so without the lock two fits running at once in a process would
    /// interleave their draws and the same seed would not give the same initial weights. (Other code drawing from that generator
    /// at the same time, or dropout during training, still can: as in PyTorch, bit-for-bit reproducibility needs one fit at a time.)
    /// </summary>
    public static CnnNetwork CreateSeeded(int seed, string architecture, ModelOptions modelOptions, PreprocessOptions preprocess, Device device)
    {
        TorchRuntime.EnsureLoaded();
        lock (SeedGate)
        {
            torch.manual_seed(seed);
            return Create(architecture, modelOptions, preprocess, device);
        }
    }

    /// <summary>The evaluation preprocessing for a model: its pretrained configuration, with explicit overrides.</summary>
    public static PreprocessOptions PreprocessFor(PretrainedConfig config, int channels, int? imageSize = null,
        IReadOnlyList<float>? mean = null, IReadOnlyList<float>? std = null, double? cropPct = null)
    {
        static IReadOnlyList<float> PerChannel(IReadOnlyList<double> values, int channels) =>
            values.Count == channels ? values.Select(v => (float)v).ToArray()
            : channels == 1 ? new[] { (float)values.Average() } // one grey channel: the average of the RGB statistics
            : Enumerable.Range(0, channels).Select(i => (float)values[i % values.Count]).ToArray();
        var options = new PreprocessOptions
        {
            Height = imageSize ?? config.InputSize.Height,
            Width = imageSize ?? config.InputSize.Width,
            Channels = channels,
            Mean = mean ?? PerChannel(config.Mean, channels),
            Std = std ?? PerChannel(config.Std, channels),
            CropPct = cropPct ?? config.CropPct,
            Interpolation = config.Interpolation switch
            {
                "bicubic" => ResizeInterpolation.Bicubic,
                "nearest" => ResizeInterpolation.Nearest,
                _ => ResizeInterpolation.Bilinear,
            },
        };
        options.Validate();
        return options;
    }

    /// <summary>Resolves a device option: CUDA when asked for or (Auto) when available.</summary>
    public static Device ResolveDevice(CnnDevice device)
    {
        TorchRuntime.EnsureLoaded();
        bool cuda = device switch
        {
            CnnDevice.Cpu => false,
            CnnDevice.Cuda => torch.cuda.is_available()
                ? true
                : throw new InvalidOperationException("Device is Cuda but no CUDA GPU is available to TorchSharp. Build with -p:TorchBackend=cuda on a machine with an NVIDIA driver, or use CnnDevice.Cpu/Auto."),
            _ => torch.cuda.is_available(),
        };
        return cuda ? CUDA : CPU;
    }

    /// <summary>Eval-mode outputs for a batch of images: logits ([N, classes]) or pooled features when <paramref name="preLogits"/>.</summary>
    /// <returns>A CPU float tensor the caller disposes.</returns>
    public Tensor Forward(IReadOnlyList<ImageSample> images, bool preLogits = false)
    {
        using var batch = PrepareBatch(images);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        lock (_gate)
        {
            Model.eval();
            var input = batch.ToTensor().to(Device);
            var output = preLogits ? Model.ForwardHead(Model.ForwardFeatures(input), preLogits: true) : Model.call(input);
            return output.to(CPU).contiguous().MoveToOuterDisposeScope();
        }
    }

    /// <summary>Decodes and preprocesses images in parallel into one batch buffer.</summary>
    public ImageBatch PrepareBatch(IReadOnlyList<ImageSample> images)
    {
        var batcher = _batcher;
        if (batcher is null || batcher.Options.BatchSize < images.Count)
            _batcher = batcher = new ImageBatcher(new ImagePreprocessor(Preprocess), new ImageBatcherOptions { BatchSize = Math.Max(images.Count, 1) });
        return batcher.CreateBatch(images, Enumerable.Range(0, images.Count).ToArray());
    }

    /// <summary>Writes <c>network.json</c> and <c>network.safetensors</c> under <paramref name="prefix"/>.</summary>
    public void Save(ZipArchive archive, string prefix)
    {
        var config = new NetworkConfig(
            Architecture, ModelOptions.NumClasses, ModelOptions.InChannels, Model.DropRate,
            ModelOptions.AuxLogits, ModelOptions.AuxLossWeight, ModelOptions.TransformInput,
            Preprocess.Height, Preprocess.Width, Preprocess.Channels, Preprocess.Mean.ToArray(), Preprocess.Std.ToArray(),
            Preprocess.CropPct, Preprocess.Interpolation.ToString());
        using (var stream = archive.CreateEntry(prefix + "network.json").Open())
            JsonSerializer.Serialize(stream, config, JsonOptions);
        string temporary = Path.Combine(Path.GetTempPath(), $"cnn-{Guid.NewGuid():N}.safetensors");
        try
        {
            using (var weights = StateDict.FromModule(Model))
                SafeTensors.Write(temporary, weights, new Dictionary<string, string> { ["architecture"] = Architecture });
            archive.CreateEntryFromFile(temporary, prefix + "network.safetensors", CompressionLevel.Fastest);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    /// <summary>Reads a network written by <see cref="Save"/>, on <paramref name="device"/>.</summary>
    public static CnnNetwork Load(ZipArchive archive, string prefix, Device? device = null)
    {
        var configEntry = archive.GetEntry(prefix + "network.json") ?? throw new InvalidDataException($"Model file: '{prefix}network.json' is missing.");
        NetworkConfig config;
        using (var stream = configEntry.Open())
            config = JsonSerializer.Deserialize<NetworkConfig>(stream, JsonOptions) ?? throw new InvalidDataException($"Model file: '{prefix}network.json' is empty.");
        var preprocess = new PreprocessOptions
        {
            Height = config.Height, Width = config.Width, Channels = config.Channels, Mean = config.Mean, Std = config.Std,
            CropPct = config.CropPct, Interpolation = Enum.Parse<ResizeInterpolation>(config.Interpolation),
        };
        // ImageSize only matters to size-dependent architectures (ViT position embeddings); CNNs ignore it.
        var modelOptions = new ModelOptions
        {
            NumClasses = config.NumClasses, InChannels = config.InChannels, DropRate = config.DropRate, ImageSize = config.Height,
            AuxLogits = config.AuxLogits, AuxLossWeight = config.AuxLossWeight, TransformInput = config.TransformInput,
        };
        var network = Create(config.Architecture, modelOptions, preprocess, device ?? CPU);
        var weightsEntry = archive.GetEntry(prefix + "network.safetensors") ?? throw new InvalidDataException($"Model file: '{prefix}network.safetensors' is missing.");
        string temporary = Path.Combine(Path.GetTempPath(), $"cnn-{Guid.NewGuid():N}.safetensors");
        try
        {
            weightsEntry.ExtractToFile(temporary);
            using var weights = SafeTensors.Read(temporary);
            StateDictLoader.Load(network.Model, weights, strict: true);
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
        return network;
    }

    public void Dispose() => Model.Dispose();

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    private sealed record NetworkConfig(
        string Architecture, int NumClasses, int InChannels, double DropRate, bool? AuxLogits, double? AuxLossWeight, bool? TransformInput,
        int Height, int Width, int Channels, float[] Mean, float[] Std, double CropPct, string Interpolation);
}
