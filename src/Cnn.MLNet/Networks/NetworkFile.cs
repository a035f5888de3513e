using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Serialization;
using Cnn.Backbones.Models;
using Cnn.Backbones.Weights;
using Cnn.MLNet.Imaging;
using static TorchSharp.torch;

namespace Cnn.MLNet.Networks;

/// <summary>
/// Stores a <see cref="CnnNetwork"/> inside a model file as <c>network.json</c> (its <see cref="NetworkSpec"/>, as it is, and the
/// precision, memory format and engine its predictions run with) and <c>network.safetensors</c> (its state dict), and reads it
/// back computing as it did when saved. Files written before the spec existed (a flat <c>network.json</c> of selected options)
/// or before the inference settings were stored are still read; they predict in float32, contiguous, with TorchSharp.
/// </summary>
internal static class NetworkFile
{
    private const string Format = "cnn-network";
    private const int Version = 2;

    /// <summary>Writes <c>network.json</c> and <c>network.safetensors</c> under <paramref name="prefix"/>.</summary>
    public static void Save(CnnNetwork network, ZipArchive archive, string prefix)
    {
        using (var writer = new StreamWriter(archive.CreateEntry(prefix + "network.json").Open()))
            writer.Write(JsonSerializer.Serialize(new Stored(Format, Version, network.Spec, new StoredInference(network.Precision, network.MemoryFormat, network.Engine)), JsonOptions));
        string temporary = Path.Combine(Path.GetTempPath(), $"cnn-{Guid.NewGuid():N}.safetensors");
        try
        {
            using (var weights = StateDict.FromModule(network.Model))
                SafeTensors.Write(temporary, weights, new Dictionary<string, string> { ["architecture"] = network.Architecture });
            archive.CreateEntryFromFile(temporary, prefix + "network.safetensors", CompressionLevel.Fastest);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    /// <summary>
    /// Reads a network written by <see cref="Save"/>, on <paramref name="device"/> (default CPU), in eval mode, computing with
    /// the stored precision, memory format and engine (Auto resolved for this machine).
    /// </summary>
    /// <exception cref="InvalidDataException">An entry is missing or damaged, the stored inference settings cannot run here, or the weights do not fit the spec.</exception>
    public static CnnNetwork Load(ZipArchive archive, string prefix, Device? device = null)
    {
        var (spec, inference) = Read(archive, prefix);
        // The weights are the file's own: a weights path in a (damaged or crafted) spec never makes loading read another file.
        if (spec.Model is { WeightsPath: not null } or { Weights: not null }) spec = spec with { Model = spec.Model with { WeightsPath = null, Weights = null } };
        var network = NetworkBuilder.Build(spec, device ?? CPU);
        var weightsEntry = archive.GetEntry(prefix + "network.safetensors");
        string temporary = Path.Combine(Path.GetTempPath(), $"cnn-{Guid.NewGuid():N}.safetensors");
        try
        {
            if (weightsEntry is null) throw new InvalidDataException($"Model file: '{prefix}network.safetensors' is missing.");
            weightsEntry.ExtractToFile(temporary);
            using var weights = SafeTensors.Read(temporary);
            StateDictLoader.Load(network.Model, weights, strict: true);
            network.Model.eval();
            try
            {
                network.UseCompute(inference.Precision, inference.MemoryFormat, inference.Engine);
            }
            catch (ArgumentException ex)
            {
                throw new InvalidDataException($"Model file: '{prefix}network.json' asks for inference settings this machine cannot run ({ex.Message})", ex);
            }
            return network;
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

    /// <summary>The <c>network.json</c> text of a spec.</summary>
    public static string Serialize(NetworkSpec spec) => JsonSerializer.Serialize(new Stored(Format, Version, spec), JsonOptions);

    /// <summary>The spec stored under <paramref name="prefix"/>.</summary>
    public static NetworkSpec ReadSpec(ZipArchive archive, string prefix) => Read(archive, prefix).Spec;

    /// <summary>The spec and inference settings stored under <paramref name="prefix"/> (float32, contiguous, TorchSharp where none are stored).</summary>
    private static (NetworkSpec Spec, StoredInference Inference) Read(ZipArchive archive, string prefix)
    {
        var entry = archive.GetEntry(prefix + "network.json") ?? throw new InvalidDataException($"Model file: '{prefix}network.json' is missing.");
        JsonDocument document;
        try
        {
            using var stream = entry.Open();
            document = JsonDocument.Parse(stream);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"Model file: '{prefix}network.json' is not valid JSON ({ex.Message}).", ex);
        }
        using (document)
        {
            try
            {
                if (!document.RootElement.TryGetProperty("spec", out _))
                    return ((document.Deserialize<LegacyConfig>(JsonOptions) ?? throw new InvalidDataException($"Model file: '{prefix}network.json' is empty.")).ToSpec(), StoredInference.Default);
                var stored = document.Deserialize<Stored>(JsonOptions) ?? throw new InvalidDataException($"Model file: '{prefix}network.json' is empty.");
                if (stored.Format != Format || stored.Version > Version)
                    throw new InvalidDataException($"Model file: '{prefix}network.json' is format '{stored.Format}' version {stored.Version}; this library reads '{Format}' up to version {Version}.");
                var inference = stored.Inference ?? StoredInference.Default;
                if (!Enum.IsDefined(inference.Precision) || !Enum.IsDefined(inference.MemoryFormat) || !Enum.IsDefined(inference.Engine))
                    throw new InvalidDataException($"Model file: '{prefix}network.json' has unknown inference settings ({inference.Precision}, {inference.MemoryFormat}, {inference.Engine}).");
                return (stored.Spec, inference);
            }
            catch (JsonException ex)
            {
                throw new InvalidDataException($"Model file: '{prefix}network.json' does not describe a network ({ex.Message}).", ex);
            }
        }
    }

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter() },
    };

    private sealed record Stored(string Format, int Version, NetworkSpec Spec,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] StoredInference? Inference = null);

    /// <summary>How the stored network's predictions compute, as its owner asked (Auto is resolved where the file is loaded).</summary>
    private sealed record StoredInference(CnnPrecision Precision, CnnMemoryFormat MemoryFormat, CnnInferenceEngine Engine)
    {
        /// <summary>What files without stored settings predict with: float32, contiguous, TorchSharp.</summary>
        public static StoredInference Default { get; } = new(CnnPrecision.Float32, CnnMemoryFormat.Contiguous, CnnInferenceEngine.TorchSharp);
    }

    /// <summary>The flat <c>network.json</c> of files written before the spec was stored whole.</summary>
    private sealed record LegacyConfig(
        string Architecture, int NumClasses, int InChannels, double DropRate, bool? AuxLogits, double? AuxLossWeight, bool? TransformInput,
        int Height, int Width, int Channels, float[] Mean, float[] Std, double CropPct, ResizeInterpolation Interpolation)
    {
        public NetworkSpec ToSpec() => new()
        {
            Architecture = Architecture,
            Model = new ModelOptions
            {
                NumClasses = NumClasses, InChannels = InChannels, DropRate = DropRate, ImageSize = Height,
                AuxLogits = AuxLogits, AuxLossWeight = AuxLossWeight, TransformInput = TransformInput,
            },
            Preprocess = new PreprocessOptions
            {
                Height = Height, Width = Width, Channels = Channels, Mean = Mean, Std = Std, CropPct = CropPct, Interpolation = Interpolation,
            },
        };
    }
}
