using System.Text.Json;
using System.Text.Json.Nodes;

namespace Cnn.Backbones.Clip;

/// <summary>A configuration this library cannot build or read (a timm or Hugging Face tower, custom layers, a damaged file).</summary>
public sealed class ClipConfigException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong, in which file, and what to do.</param>
    /// <param name="inner">The underlying error, or null.</param>
    public ClipConfigException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>
/// OpenCLIP's evaluation preprocessing (<c>preprocess_cfg</c> of <c>open_clip_config.json</c>): the channel mean and standard
/// deviation, the resize filter and the resize mode. The input size is the image tower's (<see cref="ClipVisionConfig.ImageSize"/>).
/// </summary>
/// <param name="Mean">Per-channel mean (RGB) subtracted after scaling to [0, 1].</param>
/// <param name="Std">Per-channel standard deviation (RGB).</param>
/// <param name="Interpolation"><c>bicubic</c> or <c>bilinear</c> (OpenCLIP resizes with bicubic for anything but <c>bilinear</c>).</param>
/// <param name="ResizeMode"><c>shortest</c>: resize the shorter side, then centre-crop (the only mode this library runs).</param>
public sealed record ClipPreprocessConfig(IReadOnlyList<float> Mean, IReadOnlyList<float> Std, string Interpolation = "bicubic", string ResizeMode = "shortest")
{
    /// <summary>OpenAI CLIP's preprocessing, OpenCLIP's default: mean (0.4815, 0.4578, 0.4082), std (0.2686, 0.2613, 0.2758), bicubic, shortest side.</summary>
    public static ClipPreprocessConfig OpenAi { get; } = new(
        Models.PretrainedConfig.ClipMean.Select(v => (float)v).ToArray(), Models.PretrainedConfig.ClipStd.Select(v => (float)v).ToArray());

    /// <summary>True for a bilinear resize, false for bicubic.</summary>
    public bool Bilinear => Interpolation == "bilinear";
}

/// <summary>
/// What an OpenCLIP configuration file holds: the model (<c>model_cfg</c>) and its preprocessing (<c>preprocess_cfg</c>), as
/// OpenCLIP's <c>create_model('hf-hub:…')</c> reads <c>open_clip_config.json</c>. Also reads OpenCLIP's bare model-config files
/// (<c>model_configs/*.json</c>: <c>embed_dim</c>, <c>vision_cfg</c>, <c>text_cfg</c> at the top).
/// </summary>
/// <param name="Model">The model configuration, named after the <see cref="ClipModels"/> entry it equals, else after its source.</param>
/// <param name="Preprocess">The preprocessing (OpenCLIP's defaults for what the file leaves out).</param>
public sealed record OpenClipConfig(ClipModelConfig Model, ClipPreprocessConfig Preprocess)
{
    private static readonly HashSet<string> TopKeys = ["embed_dim", "quick_gelu", "vision_cfg", "text_cfg", "custom_text", "init_logit_scale", "init_logit_bias", "cast_dtype"];

    // Keys of OpenCLIP's CLIPVisionCfg / CLIPTextCfg this library builds, with the default every other value is refused against.
    private static readonly Dictionary<string, object?> VisionDefaults = new()
    {
        ["ls_init_value"] = null, ["attentional_pool"] = false, ["no_ln_pre"] = false, ["pos_embed_type"] = "learnable",
        ["final_ln_after_pool"] = false, ["pool_type"] = "tok", ["act_kwargs"] = null, ["norm_kwargs"] = null, ["block_type"] = "default",
        ["qk_norm"] = false, ["scaled_cosine_attn"] = false, ["scale_heads"] = false, ["scale_attn_inner"] = false, ["scale_attn"] = false,
        ["scale_fc"] = false, ["timm_model_name"] = null,
    };

    private static readonly Dictionary<string, object?> TextDefaults = new()
    {
        ["hf_tokenizer_name"] = null, ["tokenizer_mode"] = null, ["tokenizer_kwargs"] = null, ["ls_init_value"] = null, ["embed_cls"] = false,
        ["no_causal_mask"] = false, ["final_ln_after_pool"] = false, ["pool_type"] = "argmax", ["proj_bias"] = false,
        ["proj_type"] = "linear", ["act_kwargs"] = null, ["norm_kwargs"] = null, ["block_type"] = "default", ["qk_norm"] = false,
        ["scaled_cosine_attn"] = false, ["scale_heads"] = false, ["scale_attn_inner"] = false, ["scale_attn"] = false, ["scale_fc"] = false,
        ["hf_model_name"] = null,
    };

    // Keys that change nothing at inference, or only with a custom layer refused above (dropout, token outputs, pooler sizes, special ids).
    private static readonly HashSet<string> VisionIgnored = ["patch_dropout", "output_tokens", "attn_pooler_queries", "attn_pooler_heads", "timm_model_pretrained", "timm_pool", "timm_proj", "timm_proj_bias", "timm_drop", "timm_drop_path"];

    private static readonly HashSet<string> TextIgnored = ["output_tokens", "pad_id", "eos_id", "hf_model_pretrained", "hf_proj_type", "hf_pooler_type"];

    private static readonly HashSet<string> VisionKeys = ["image_size", "layers", "width", "head_width", "mlp_ratio", "patch_size", .. VisionDefaults.Keys, .. VisionIgnored];

    private static readonly HashSet<string> TextKeys = ["context_length", "vocab_size", "width", "heads", "layers", "mlp_ratio", .. TextDefaults.Keys, .. TextIgnored];

    /// <summary>Reads an <c>open_clip_config.json</c> (or a bare OpenCLIP model config) from <paramref name="path"/>.</summary>
    /// <param name="path">The file.</param>
    /// <param name="name">The name for a configuration that equals no <see cref="ClipModels"/> entry (e.g. the hub name); default the path.</param>
    /// <exception cref="ClipConfigException">The file is not valid JSON, lacks a field, or describes a model this library cannot build; the message names the file.</exception>
    public static OpenClipConfig Load(string path, string? name = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ClipConfigException($"Cannot read the OpenCLIP configuration {path}: {e.Message}", e);
        }
        return Parse(text, path, name);
    }

    /// <summary>Parses the text of an <c>open_clip_config.json</c> (or of a bare OpenCLIP model config).</summary>
    /// <param name="json">The JSON text.</param>
    /// <param name="source">Where the text came from, for messages (a path or URL).</param>
    /// <param name="name">The name for a configuration that equals no <see cref="ClipModels"/> entry; default <paramref name="source"/>.</param>
    /// <exception cref="ClipConfigException">Invalid JSON, a missing field, or a model this library cannot build; the message names <paramref name="source"/>.</exception>
    public static OpenClipConfig Parse(string json, string source, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(source);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new ClipConfigException($"The OpenCLIP configuration {source} is not valid JSON ({e.Message}).", e);
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Error(source, "is not a JSON object");
            var modelCfg = root.TryGetProperty("model_cfg", out var m) ? m : root;
            if (modelCfg.ValueKind != JsonValueKind.Object) throw Error(source, "has a 'model_cfg' that is not an object");
            var model = ParseModel(modelCfg, source, name ?? source);
            model = ClipModels.All.FirstOrDefault(c => SameModel(c, model)) ?? model;
            var preprocess = root.TryGetProperty("preprocess_cfg", out var p) && p.ValueKind == JsonValueKind.Object
                ? ParsePreprocess(p, source)
                : ClipPreprocessConfig.OpenAi;
            return new OpenClipConfig(model, preprocess);
        }
    }

    /// <summary>The configuration as <c>open_clip_config.json</c> text (<c>model_cfg</c> and <c>preprocess_cfg</c>), which <see cref="Parse"/> reads back.</summary>
    public string ToJson()
    {
        var vision = Model.Vision;
        var visionCfg = new JsonObject
        {
            ["image_size"] = vision.ImageSize,
            ["layers"] = vision.IsResNet ? new JsonArray(vision.Layers.Select(l => (JsonNode)l).ToArray()) : vision.Layers[0],
            ["width"] = vision.Width,
            ["head_width"] = vision.HeadWidth,
            ["mlp_ratio"] = vision.MlpRatio,
            ["patch_size"] = vision.PatchSize,
        };
        var text = Model.Text;
        var textCfg = new JsonObject
        {
            ["context_length"] = text.ContextLength, ["vocab_size"] = text.VocabularySize, ["width"] = text.Width, ["heads"] = text.Heads,
            ["layers"] = text.Layers, ["mlp_ratio"] = text.MlpRatio,
        };
        var root = new JsonObject
        {
            ["model_cfg"] = new JsonObject { ["embed_dim"] = Model.EmbedDim, ["quick_gelu"] = Model.QuickGelu, ["vision_cfg"] = visionCfg, ["text_cfg"] = textCfg },
            ["preprocess_cfg"] = new JsonObject
            {
                ["mean"] = new JsonArray(Preprocess.Mean.Select(v => (JsonNode)v).ToArray()),
                ["std"] = new JsonArray(Preprocess.Std.Select(v => (JsonNode)v).ToArray()),
                ["interpolation"] = Preprocess.Interpolation,
                ["resize_mode"] = Preprocess.ResizeMode,
            },
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>
    /// Whether two configurations build the same model: embedding width, QuickGELU, every field of both towers (names aside).
    /// </summary>
    /// <param name="a">One configuration.</param>
    /// <param name="b">The other.</param>
    public static bool SameModel(ClipModelConfig a, ClipModelConfig b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return a.EmbedDim == b.EmbedDim && a.QuickGelu == b.QuickGelu &&
            a.Vision.ImageSize == b.Vision.ImageSize && a.Vision.Layers.SequenceEqual(b.Vision.Layers) && a.Vision.Width == b.Vision.Width &&
            a.Vision.PatchSize == b.Vision.PatchSize && a.Vision.HeadWidth == b.Vision.HeadWidth && a.Vision.MlpRatio == b.Vision.MlpRatio &&
            a.Text == b.Text;
    }

    /// <summary>One line describing a configuration, e.g. for a message naming two that disagree.</summary>
    /// <param name="config">The configuration.</param>
    public static string Describe(ClipModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var t = config.Text;
        return FormattableString.Invariant(
            $"image tower {config.Vision.Describe()}, head width {config.Vision.HeadWidth}, MLP ratio {config.Vision.MlpRatio}; text width {t.Width}, {t.Heads} heads, {t.Layers} blocks, context {t.ContextLength}, vocabulary {t.VocabularySize}; embedding {config.EmbedDim}; {(config.QuickGelu ? "QuickGELU" : "GELU")}");
    }

    /// <summary>The model configuration of <paramref name="json"/> as written, under <paramref name="name"/> (no look-up in <see cref="ClipModels"/>).</summary>
    internal static ClipModelConfig ParseModelAsWritten(string json, string source, string name)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        return ParseModel(root.TryGetProperty("model_cfg", out var m) ? m : root, source, name);
    }

    private static ClipModelConfig ParseModel(JsonElement cfg, string source, string name)
    {
        foreach (var property in cfg.EnumerateObject())
        {
            if (!TopKeys.Contains(property.Name))
                throw Error(source, $"has model_cfg.{property.Name}, which this library does not build (it builds OpenCLIP's plain CLIP: ViT or ModifiedResNet image tower, transformer text tower)");
        }
        if (Bool(cfg, "custom_text", source, "model_cfg") == true)
            throw Error(source, "sets model_cfg.custom_text (a CustomTextCLIP, state-dict keys under text.*), which this library does not build");
        if (cfg.TryGetProperty("init_logit_bias", out var bias) && bias.ValueKind != JsonValueKind.Null)
            throw Error(source, "sets model_cfg.init_logit_bias (a SigLIP model, sigmoid loss), which this library does not build");
        int embed = Int(Required(cfg, "embed_dim", source, "model_cfg"), source, "model_cfg.embed_dim");
        bool quickGelu = Bool(cfg, "quick_gelu", source, "model_cfg") ?? false;
        var visionCfg = Object(cfg, "vision_cfg", source);
        var textCfg = Object(cfg, "text_cfg", source);
        if (visionCfg.TryGetProperty("timm_model_name", out var timm) && timm.ValueKind != JsonValueKind.Null)
            throw Error(source, $"has a timm image tower (vision_cfg.timm_model_name '{timm}'), which this library does not build; only OpenCLIP's ViT and ModifiedResNet towers are supported");
        if (textCfg.TryGetProperty("hf_model_name", out var hf) && hf.ValueKind != JsonValueKind.Null)
            throw Error(source, $"has a Hugging Face text tower (text_cfg.hf_model_name '{hf}'), which this library does not build; only OpenCLIP's own text transformer is supported");
        CheckKeys(visionCfg, VisionKeys, VisionDefaults, source, "vision_cfg");
        CheckKeys(textCfg, TextKeys, TextDefaults, source, "text_cfg");

        var vision = ParseVision(visionCfg, source);
        var text = new ClipTextConfig(
            OptionalInt(textCfg, "context_length", 77, source, "text_cfg"),
            OptionalInt(textCfg, "vocab_size", 49408, source, "text_cfg"),
            OptionalInt(textCfg, "width", 512, source, "text_cfg"),
            OptionalInt(textCfg, "heads", 8, source, "text_cfg"),
            OptionalInt(textCfg, "layers", 12, source, "text_cfg"),
            OptionalDouble(textCfg, "mlp_ratio", 4.0, source, "text_cfg"));
        if (text.Heads < 1 || text.Width % text.Heads != 0)
            throw Error(source, $"has text_cfg.width {text.Width} not divisible into {text.Heads} heads");
        return new ClipModelConfig(name, embed, vision, text, quickGelu);
    }

    private static ClipVisionConfig ParseVision(JsonElement cfg, string source)
    {
        int imageSize = 224;
        if (cfg.TryGetProperty("image_size", out var size))
        {
            if (size.ValueKind == JsonValueKind.Array)
            {
                var sides = size.EnumerateArray().Select(s => Int(s, source, "vision_cfg.image_size")).ToArray();
                if (sides.Length != 2 || sides[0] != sides[1])
                    throw Error(source, $"has a non-square vision_cfg.image_size {size}; this library builds square inputs only");
                imageSize = sides[0];
            }
            else
            {
                imageSize = Int(size, source, "vision_cfg.image_size");
            }
        }
        int[] layers = cfg.TryGetProperty("layers", out var l)
            ? l.ValueKind == JsonValueKind.Array ? l.EnumerateArray().Select(v => Int(v, source, "vision_cfg.layers")).ToArray() : [Int(l, source, "vision_cfg.layers")]
            : [12];
        int width = OptionalInt(cfg, "width", 768, source, "vision_cfg");
        int headWidth = OptionalInt(cfg, "head_width", 64, source, "vision_cfg");
        double mlpRatio = OptionalDouble(cfg, "mlp_ratio", 4.0, source, "vision_cfg");
        bool resNet = layers.Length > 1;
        if (resNet)
        {
            if (layers.Length != 4) throw Error(source, $"has vision_cfg.layers with {layers.Length} entries; a ModifiedResNet has 4 stages (a ViT one number)");
            if (imageSize % 32 != 0) throw Error(source, $"has vision_cfg.image_size {imageSize}; a ModifiedResNet needs a multiple of 32");
            return new ClipVisionConfig(imageSize, layers, width, null, headWidth, mlpRatio);
        }
        int patch = cfg.TryGetProperty("patch_size", out var p) && p.ValueKind != JsonValueKind.Null ? Int(p, source, "vision_cfg.patch_size") : 16;
        if (patch < 1 || imageSize % patch != 0) throw Error(source, $"has vision_cfg.image_size {imageSize} not divisible by patch_size {patch}");
        if (headWidth < 1 || width % headWidth != 0) throw Error(source, $"has vision_cfg.width {width} not divisible by head_width {headWidth}");
        return new ClipVisionConfig(imageSize, layers, width, patch, headWidth, mlpRatio);
    }

    private static ClipPreprocessConfig ParsePreprocess(JsonElement cfg, string source)
    {
        var defaults = ClipPreprocessConfig.OpenAi;
        IReadOnlyList<float> Triple(string key, IReadOnlyList<float> fallback)
        {
            if (!cfg.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return fallback;
            if (v.ValueKind != JsonValueKind.Array) throw Error(source, $"has a preprocess_cfg.{key} that is not a list of three numbers");
            var values = v.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.Number ? x.GetSingle() : throw Error(source, $"has a non-number in preprocess_cfg.{key}")).ToArray();
            if (values.Length != 3) throw Error(source, $"has preprocess_cfg.{key} with {values.Length} values; RGB needs 3");
            return values;
        }
        var mean = Triple("mean", defaults.Mean);
        var std = Triple("std", defaults.Std);
        if (std.Any(s => !(s > 0))) throw Error(source, "has a preprocess_cfg.std value that is not positive");
        string interpolation = String(cfg, "interpolation", source) ?? defaults.Interpolation;
        if (interpolation is not ("bicubic" or "bilinear" or "random"))
            throw Error(source, $"has preprocess_cfg.interpolation '{interpolation}'; OpenCLIP's are bicubic and bilinear");
        string resizeMode = String(cfg, "resize_mode", source) ?? defaults.ResizeMode;
        if (resizeMode != "shortest")
            throw Error(source, $"has preprocess_cfg.resize_mode '{resizeMode}'; this library runs 'shortest' only (resize the shorter side, centre-crop)");
        string mode = String(cfg, "mode", source) ?? "RGB";
        if (mode != "RGB") throw Error(source, $"has preprocess_cfg.mode '{mode}'; OpenCLIP and this library take RGB");
        return new ClipPreprocessConfig(mean, std, interpolation == "bilinear" ? "bilinear" : "bicubic", resizeMode);
    }

    private static void CheckKeys(JsonElement cfg, HashSet<string> known, Dictionary<string, object?> defaults, string source, string section)
    {
        foreach (var property in cfg.EnumerateObject())
        {
            if (!known.Contains(property.Name))
                throw Error(source, $"has {section}.{property.Name}, which this library does not build");
            if (!defaults.TryGetValue(property.Name, out var expected)) continue;
            var value = property.Value;
            bool isDefault = expected switch
            {
                _ when value.ValueKind == JsonValueKind.Null => true,
                null => value.ValueKind == JsonValueKind.Object && !value.EnumerateObject().Any(),
                bool b => value.ValueKind is JsonValueKind.True or JsonValueKind.False && value.GetBoolean() == b,
                string s => value.ValueKind == JsonValueKind.String && value.GetString() == s,
                _ => false,
            };
            if (!isDefault)
                throw Error(source, $"sets {section}.{property.Name} to {value.GetRawText()}, a custom layer this library does not build (it builds OpenCLIP's plain CLIP towers)");
        }
    }

    private static JsonElement Required(JsonElement cfg, string key, string source, string section) =>
        cfg.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null ? v : throw Error(source, $"has no {section}.{key}");

    private static JsonElement Object(JsonElement cfg, string key, string source)
    {
        var value = Required(cfg, key, source, "model_cfg");
        return value.ValueKind == JsonValueKind.Object ? value : throw Error(source, $"has a model_cfg.{key} that is not an object");
    }

    private static int Int(JsonElement value, string source, string what) =>
        value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int n) && n > 0 ? n : throw Error(source, $"has {what} = {value.GetRawText()}; expected a positive integer");

    private static int OptionalInt(JsonElement cfg, string key, int fallback, string source, string section) =>
        cfg.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null ? Int(v, source, $"{section}.{key}") : fallback;

    private static double OptionalDouble(JsonElement cfg, string key, double fallback, string source, string section) =>
        !cfg.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null ? fallback
        : v.ValueKind == JsonValueKind.Number && v.GetDouble() > 0 ? v.GetDouble()
        : throw Error(source, $"has {section}.{key} = {v.GetRawText()}; expected a positive number");

    private static bool? Bool(JsonElement cfg, string key, string source, string section) =>
        !cfg.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean()
        : throw Error(source, $"has {section}.{key} = {v.GetRawText()}; expected true or false");

    private static string? String(JsonElement cfg, string key, string source) =>
        !cfg.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString()
        : throw Error(source, $"has preprocess_cfg.{key} = {v.GetRawText()}; expected a string");

    private static ClipConfigException Error(string source, string what) =>
        new($"The OpenCLIP configuration {source} {what}.");
}
