using System.Globalization;
using System.Text.Json;
using Cnn.Backbones.Models;

namespace Cnn.Backbones.Weights.Timm;

/// <summary>
/// What a timm hub <c>config.json</c> says about its checkpoint, turned into this library's terms: the registered model that is
/// timm's architecture, the <see cref="Models.PretrainedConfig"/> its preprocessing follows, the creation options the checkpoint
/// needs, and the class labels when the file names them.
/// </summary>
/// <param name="Architecture">timm's architecture name (<c>architecture</c>, e.g. <c>mobilenetv3_large_100</c>).</param>
/// <param name="Definition">The registered model of that architecture (e.g. <c>mobilenet_v3_large</c>).</param>
/// <param name="PretrainedConfig">
/// Input size, mean, std, crop fraction and interpolation from <c>pretrained_cfg</c>, the class count from <c>num_classes</c>, the first
/// convolution and classifier from <see cref="Definition"/> (this library's module names).
/// </param>
/// <param name="Options">
/// Options to build the model for the checkpoint: <see cref="ModelOptions.NumClasses"/> = <c>num_classes</c>,
/// <see cref="ModelOptions.ImageSize"/> = the input size, and what the family's key map needs (<see cref="RuleKeyMap.CheckpointOptions"/>).
/// </param>
/// <param name="LabelNames">Class names by classifier index (<c>label_names</c>), or null when the file has none.</param>
/// <param name="LabelDescriptions">Descriptions by label name (<c>label_descriptions</c>), or null when the file has none.</param>
/// <param name="CropMode">timm's <c>crop_mode</c> (<c>center</c>, <c>squash</c> or <c>border</c>); this library's preprocessing crops the centre.</param>
public sealed record TimmModelConfig(
    string Architecture,
    ModelDefinition Definition,
    PretrainedConfig PretrainedConfig,
    ModelOptions Options,
    IReadOnlyList<string>? LabelNames,
    IReadOnlyDictionary<string, string>? LabelDescriptions,
    string CropMode);

/// <summary>Reads timm's hub <c>config.json</c> (as <c>timm.models.push_to_hf</c> writes it) into a <see cref="TimmModelConfig"/>.</summary>
public static class TimmPretrainedConfig
{
    /// <summary>timm's defaults for fields a <c>pretrained_cfg</c> may leave out.</summary>
    private const double DefaultCropPct = 0.875;

    /// <summary>Reads a <c>config.json</c> file.</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a timm config or names an architecture that is not registered (or is refused; the message says why).</exception>
    public static TimmModelConfig Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"timm config '{path}' does not exist.", path);
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses the text of a <c>config.json</c>.</summary>
    /// <param name="json">The JSON text.</param>
    /// <param name="source">Where it came from (a path or URL), for messages.</param>
    /// <exception cref="InvalidDataException">The text is not a timm config or names an architecture that is not registered (or is refused).</exception>
    public static TimmModelConfig Parse(string json, string source = "config.json")
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"timm config '{source}' is not valid JSON: {ex.Message}", ex);
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Bad(source, "the top level is not a JSON object");
            var cfg = root.TryGetProperty("pretrained_cfg", out var p) && p.ValueKind == JsonValueKind.Object ? p : root;
            string architecture = String(root, "architecture", source) ?? String(cfg, "architecture", source)
                ?? throw Bad(source, "it has no 'architecture' (the timm model name)");
            ModelDefinition definition;
            try
            {
                definition = ModelRegistry.GetDefinition(TimmNames.Architecture(architecture));
            }
            catch (ArgumentException ex)
            {
                throw new InvalidDataException($"timm config '{source}' is for architecture '{architecture}', which cannot be loaded here: {ex.Message}", ex);
            }

            int classes = Int(root, "num_classes", source) ?? Int(cfg, "num_classes", source) ?? definition.DefaultConfig.NumClasses;
            var inputSize = InputSizeOf(cfg, "input_size", source) ?? definition.DefaultConfig.InputSize;
            if (root.TryGetProperty("model_args", out var args) && args.ValueKind == JsonValueKind.Object && args.TryGetProperty("img_size", out var img))
                inputSize = ImageSizeArgument(img, inputSize, source);
            var mean = Triple(cfg, "mean", source) ?? definition.DefaultConfig.Mean;
            var std = Triple(cfg, "std", source) ?? definition.DefaultConfig.Std;
            if (std.Any(s => !(s > 0))) throw Bad(source, $"'std' must be positive; got [{string.Join(", ", std)}]");
            double cropPct = Number(cfg, "crop_pct", source) ?? DefaultCropPct;
            if (!(cropPct > 0 && cropPct <= 1)) throw Bad(source, $"'crop_pct' must be in (0, 1]; got {cropPct}");
            string interpolation = String(cfg, "interpolation", source) ?? "bilinear";
            if (interpolation is not ("bilinear" or "bicubic" or "nearest"))
                throw Bad(source, $"'interpolation' '{interpolation}' is not supported (bilinear, bicubic or nearest)");
            string cropMode = String(cfg, "crop_mode", source) ?? "center";
            string tag = String(cfg, "tag", source) is { } t ? $"timm {architecture}.{t}" : $"timm {architecture}";
            if (inputSize.Height != inputSize.Width)
                throw Bad(source, $"input size {inputSize.Height}×{inputSize.Width} is not square; this library's models take square images");

            var config = new PretrainedConfig(inputSize, mean, std, cropPct, interpolation,
                definition.DefaultConfig.FirstConv, definition.DefaultConfig.Classifier, classes, tag);
            var options = (definition.DefaultOptions ?? new ModelOptions()) with
            {
                NumClasses = classes,
                InChannels = inputSize.Channels,
                ImageSize = inputSize.Height == definition.DefaultConfig.InputSize.Height ? null : inputSize.Height,
            };
            if (definition.TimmKeyMap is RuleKeyMap map) options = map.AdaptOptions(options);
            var labels = LabelNames(root, classes, source);
            var descriptions = root.TryGetProperty("label_descriptions", out var d) && d.ValueKind == JsonValueKind.Object
                ? d.EnumerateObject().ToDictionary(e => e.Name, e => e.Value.ValueKind == JsonValueKind.String ? e.Value.GetString()! : e.Value.ToString(), StringComparer.Ordinal)
                : null;
            return new TimmModelConfig(architecture, definition, config, options, labels, descriptions, cropMode);
        }
    }

    private static IReadOnlyList<string>? LabelNames(JsonElement root, int classes, string source)
    {
        if (!root.TryGetProperty("label_names", out var names) || names.ValueKind == JsonValueKind.Null) return null;
        string[] labels;
        if (names.ValueKind == JsonValueKind.Array)
        {
            labels = names.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : e.ToString()).ToArray();
        }
        else if (names.ValueKind == JsonValueKind.Object)
        {
            // timm writes a dict {index: name} when the indices have gaps; every classifier index must be named.
            labels = new string[classes];
            foreach (var entry in names.EnumerateObject())
            {
                if (!int.TryParse(entry.Name, NumberStyles.None, CultureInfo.InvariantCulture, out int index) || index >= classes)
                    throw Bad(source, $"'label_names' key '{entry.Name}' is not a class index below num_classes = {classes}");
                labels[index] = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString()! : entry.Value.ToString();
            }
            int missing = Array.FindIndex(labels, l => l is null);
            if (missing >= 0) throw Bad(source, $"'label_names' names no class {missing} (of {classes})");
        }
        else
        {
            throw Bad(source, "'label_names' is neither a list nor an object");
        }
        if (labels.Length != classes)
            throw Bad(source, $"'label_names' has {labels.Length} names but num_classes is {classes}");
        return labels;
    }

    private static InputSize ImageSizeArgument(JsonElement img, InputSize current, string source) => img.ValueKind switch
    {
        JsonValueKind.Number when img.TryGetInt32(out int s) && s > 0 => current with { Height = s, Width = s },
        JsonValueKind.Array when img.GetArrayLength() == 2 && img.EnumerateArray().All(e => e.TryGetInt32(out int v) && v > 0) =>
            current with { Height = img[0].GetInt32(), Width = img[1].GetInt32() },
        _ => throw Bad(source, $"'model_args.img_size' must be a positive integer or [height, width]; got {img}"),
    };

    private static InputSize? InputSizeOf(JsonElement e, string name, string source)
    {
        if (!e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Array || v.GetArrayLength() != 3 || !v.EnumerateArray().All(x => x.TryGetInt32(out int n) && n > 0))
            throw Bad(source, $"'{name}' must be [channels, height, width] of positive integers; got {v}");
        return new InputSize(v[0].GetInt32(), v[1].GetInt32(), v[2].GetInt32());
    }

    private static double[]? Triple(JsonElement e, string name, string source)
    {
        if (!e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Array || v.GetArrayLength() == 0 || !v.EnumerateArray().All(x => x.ValueKind == JsonValueKind.Number))
            throw Bad(source, $"'{name}' must be a list of numbers; got {v}");
        return v.EnumerateArray().Select(x => x.GetDouble()).ToArray();
    }

    private static string? String(JsonElement e, string name, string source)
    {
        if (!e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw Bad(source, $"'{name}' must be a string; got {v}");
    }

    private static int? Int(JsonElement e, string name, string source)
    {
        if (!e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        return v.TryGetInt32(out int n) && n >= 0 ? n : throw Bad(source, $"'{name}' must be a non-negative integer; got {v}");
    }

    private static double? Number(JsonElement e, string name, string source)
    {
        if (!e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        return v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw Bad(source, $"'{name}' must be a number; got {v}");
    }

    private static InvalidDataException Bad(string source, string problem) =>
        new($"timm config '{source}' cannot be read: {problem}.");
}
