using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Cnn.MLNet.Data;

namespace Cnn.MLNet.Training.Checkpoints;

/// <summary>
/// What a run is, as named parts (architecture and network spec, classes, training and validation images, every option that
/// changes the arithmetic): a checkpoint records it, and a resume with anything different is refused by name.
/// </summary>
internal sealed class RunFingerprint
{
    /// <summary>Options that may differ between a run and its resume: where things go, how progress is shown, the device.</summary>
    private static readonly HashSet<string> Free = new(StringComparer.Ordinal)
    {
        nameof(CnnFitOptions.CheckpointDirectory), nameof(CnnFitOptions.ResumeFrom), nameof(CnnFitOptions.CheckpointsKept),
        nameof(CnnFitOptions.CheckpointEverySteps), nameof(CnnFitOptions.Device), nameof(CnnFitOptions.SkipCorruptImages),
        nameof(CnnFitOptions.ImageColumnName), nameof(CnnFitOptions.ScoreColumnName), nameof(CnnFitOptions.PredictedLabelColumnName),
        nameof(CnnTrainerOptions.LabelColumnName), nameof(CnnTrainerOptions.CacheDirectory), nameof(CnnTrainerOptions.CacheBottlenecks),
        nameof(CnnFitOptions.InferencePrecision), nameof(CnnFitOptions.InferenceMemoryFormat),
    };

    private readonly SortedDictionary<string, string> _parts;

    private RunFingerprint(SortedDictionary<string, string> parts) => _parts = parts;

    /// <summary>The parts, name → value.</summary>
    public IReadOnlyDictionary<string, string> Parts => _parts;

    /// <summary>
    /// The fingerprint of a run of <paramref name="options"/> (every public scalar option but the free ones) with these named
    /// parts (the network spec, the classes, the images …).
    /// </summary>
    public static RunFingerprint Of(CnnFitOptions options, IEnumerable<(string Name, string Value)> parts)
    {
        var all = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var property in options.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (!property.CanWrite || Free.Contains(property.Name) || !IsScalar(property.PropertyType)) continue;
            all["option " + property.Name] = Format(property.GetValue(options));
        }
        foreach (var (name, value) in parts) all[name] = value;
        // Data-parallel ranks each train their shard: a run resumes with as many ranks as it had.
        all["processes"] = (Distributed.MpiLaunch.Detect()?.Size ?? 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return new RunFingerprint(all);
    }

    /// <summary>A short description of a split's images: how many, and a SHA-256 of their names and labels in order.</summary>
    /// <param name="samples">The images.</param>
    /// <param name="labels">Their labels when they are not the samples' own (distillation's, −1 for unlabelled), or null.</param>
    public static string Images(IReadOnlyList<ImageSample> samples, IReadOnlyList<int>? labels = null)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        for (int i = 0; i < samples.Count; i++)
            hash.AppendData(Encoding.UTF8.GetBytes($"{samples[i].Name}\t{labels?[i] ?? samples[i].Label}\n"));
        return $"{samples.Count} images, names and labels {Convert.ToHexString(hash.GetHashAndReset(), 0, 8).ToLowerInvariant()}";
    }

    /// <summary>A SHA-256 (16 hex digits) of a model's state dict: a teacher's identity.</summary>
    public static string Weights(TorchSharp.torch.nn.Module model)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        AppendStateDict(hash, model.state_dict());
        return Convert.ToHexString(hash.GetHashAndReset(), 0, 8).ToLowerInvariant();
    }

    /// <summary>Adds each entry's name and raw bytes (any dtype, CPU, contiguous) to <paramref name="hash"/>.</summary>
    internal static void AppendStateDict(IncrementalHash hash, IEnumerable<KeyValuePair<string, TorchSharp.torch.Tensor>> entries)
    {
        foreach (var (name, value) in entries)
        {
            hash.AppendData(Encoding.UTF8.GetBytes(name + "\n"));
            using var cpu = value.detach().cpu().contiguous();
            hash.AppendData(cpu.bytes);
        }
    }

    /// <summary>Reads a fingerprint written by <see cref="ToText"/>.</summary>
    public static RunFingerprint Parse(string text) =>
        new(new SortedDictionary<string, string>(System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, string>>(text)
            ?? throw new InvalidDataException("empty run description"), StringComparer.Ordinal));

    /// <summary>The parts as JSON.</summary>
    public string ToText() => System.Text.Json.JsonSerializer.Serialize(_parts);

    /// <summary>The first difference from <paramref name="recorded"/> (what the checkpoint recorded), or null when they agree.</summary>
    public string? Difference(RunFingerprint recorded)
    {
        foreach (var name in _parts.Keys.Union(recorded._parts.Keys).Order(StringComparer.Ordinal))
        {
            string? now = _parts.GetValueOrDefault(name), then = recorded._parts.GetValueOrDefault(name);
            if (now != then) return $"{name}: the checkpoint's run had {then ?? "nothing"}, this run has {now ?? "nothing"}";
        }
        return null;
    }

    private static bool IsScalar(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        return type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal);
    }

    private static string Format(object? value) => value switch
    {
        null => "null",
        double d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        float f => f.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
