using Cnn.Backbones.Clip;
using Cnn.Backbones.Onnx.Export;
using Cnn.Backbones.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Models;

/// <summary>
/// A CLIP image tower (OpenCLIP's <c>visual</c>, <see cref="ClipImageTower"/>) as a backbone, with a linear classifier <c>head</c>
/// on the image embedding, as CLIP's linear probe has it: fine-tune it or train only the head (freeze every stage but
/// <c>head</c>) on labelled images. Its keys are OpenCLIP's (<c>visual.*</c>) plus <c>head.*</c>, so an OpenCLIP checkpoint (a
/// whole CLIP state dict) loads its image tower and leaves the head as initialised.
/// </summary>
/// <remarks>
/// <para><see cref="Backbone.ForwardFeatures"/> returns the ViT's tokens after <c>ln_post</c> [N, 1 + L, width] or the ResNet's
/// last map [N, 32·width, S/32, S/32]; <see cref="Backbone.ForwardHead"/> pools them into the embedding [N, EmbedDim] (the class
/// token through <c>proj</c>, or the attention pool), which is <see cref="Backbone.NumFeatures"/> wide and what
/// <c>NumClasses = 0</c> returns. Feature stages: the ViT's blocks (tokens, class token first; <see cref="TokensToMap"/>); the
/// ResNet's stem (stride 2) and four stages.</para>
/// <para><b>Image size.</b> The position embeddings are built for <see cref="ModelOptions.ImageSize"/> (default 224); inputs must
/// have that size. Weights made for another size are resampled when loaded (antialiased bicubic on the grid, the class or mean
/// token kept, as OpenCLIP's <c>resize_pos_embed</c> does for the ViT).</para>
/// </remarks>
public sealed class ClipImageBackbone : Backbone
{
    private readonly ClipImageTower visual;
    private nn.Module<Tensor, Tensor>? _head;

    /// <summary>Builds the tower with OpenAI CLIP's initialisation and a fresh head.</summary>
    /// <param name="name">Registered model name, e.g. <c>clip_vit_b32</c>.</param>
    /// <param name="config">The CLIP model whose image tower this is (<see cref="ClipModels"/>).</param>
    /// <param name="options">Creation options (<see cref="ModelOptions.ImageSize"/>; 3 input channels).</param>
    /// <param name="device">Device for the parameters; null for the default. The meta device builds without memory.</param>
    public ClipImageBackbone(string name, ClipModelConfig config, ModelOptions? options = null, Device? device = null)
        : base(name, options ??= new ModelOptions(), (config ?? throw new ArgumentNullException(nameof(config))).EmbedDim,
            Prefixed(ClipImageTower.StageInfoOf(VisionFor(name, config, options))), ClipImageFamily.Config(config))
    {
        Config = config with { Vision = VisionFor(name, config, options) };
        visual = Config.Vision.IsResNet
            ? new ClipModifiedResNet(Config.Vision, config.EmbedDim, device)
            : new ClipVisionTransformer(Config.Vision, config.EmbedDim, config.QuickGelu, device);
        register_module("visual", visual);
        if (!options.FeaturesOnly)
        {
            _head = CreateClassifier(options.NumClasses, device);
            register_module("head", _head);
        }
        StageGroups = visual.Groups.Select(g => new StageGroup(g.Name, g.Prefixes.Select(p => "visual." + p).ToArray()))
            .Append(new StageGroup("head", ["head."])).ToArray();
    }

    /// <summary>The CLIP configuration of the tower (its image size as built).</summary>
    public ClipModelConfig Config { get; }

    /// <summary>The input size (square) the position embeddings are made for.</summary>
    public int ImageSize => Config.Vision.ImageSize;

    /// <inheritdoc />
    public override int? FixedInputSize => ImageSize;

    /// <summary>The image tower (OpenCLIP's <c>visual</c>); <c>Tower.call(images)</c> is OpenCLIP's <c>encode_image</c>.</summary>
    public ClipImageTower Tower => visual;

    /// <inheritdoc />
    public override IReadOnlyList<StageGroup> StageGroups { get; }

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? Classifier { get => _head; set => _head = value; }

    /// <inheritdoc />
    protected override Tensor ForwardStage(int index, Tensor x)
    {
        if (index < 0 || index >= FeatureInfo.Count)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"{GetName()} has feature stages 0..{FeatureInfo.Count - 1}.");
        if (index == 0) CheckSize(x);
        return visual.ForwardStage(index, x);
    }

    /// <inheritdoc />
    protected override Tensor FinishFeatures(Tensor lastStage) => visual.FinishFeatures(lastStage);

    /// <summary>The image embedding [N, EmbedDim]: the ViT's class token through <c>proj</c>, or the ResNet's attention pool.</summary>
    /// <param name="x">The output of <see cref="Backbone.ForwardFeatures"/>.</param>
    protected override Tensor ForwardPool(Tensor x) => visual.Pool(x);

    /// <summary>Turns ViT block tokens [N, 1 + L, width] into a map [N, width, g, g] (the class token dropped); a ResNet's maps are returned as they are.</summary>
    /// <param name="tokens">A stage output or the features.</param>
    public Tensor TokensToMap(Tensor tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (visual is not ClipVisionTransformer vit) return tokens.alias();
        using var scope = NewDisposeScope();
        int grid = vit.GridSize;
        return tokens[.., 1..].transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], grid, grid).contiguous().MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    private protected override string ExportStage(int index, OnnxExportContext context, string x) => visual.ExportStage(index, context, x);

    /// <inheritdoc />
    private protected override string ExportFinishFeatures(OnnxExportContext context, string lastStage) => visual.ExportFinishFeatures(context, lastStage);

    /// <inheritdoc />
    private protected override string ExportPool(OnnxExportContext context, string features) => visual.ExportPool(context, features);

    /// <summary>
    /// An OpenCLIP checkpoint (a whole CLIP state dict: <c>text_projection</c>, <c>token_embedding</c>, …) keeps only its image tower
    /// (<c>visual.*</c>) after its tower is checked against this one; a leading <c>module.</c> is dropped. Other files (this
    /// model's own saved weights) are left as they are.
    /// </summary>
    /// <param name="weights">A private copy of the file's entries.</param>
    /// <exception cref="ClipWeightsException">The checkpoint holds another tower or size; the message names what it holds.</exception>
    protected override void RemapWeights(StateDict weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (weights.Count > 0 && weights.Keys.All(k => k.StartsWith("module.", StringComparison.Ordinal))) weights.RemovePrefix("module.");
        if (!weights.ContainsKey("text_projection")) return;
        ClipWeights.CheckImageTower(weights, Config, GetName(), ClipImageFamily.ModelFor);
        weights.Rename(key => key.StartsWith("visual.", StringComparison.Ordinal) ? key : null);
    }

    /// <summary>Resamples a checkpoint's position embedding (<c>visual.positional_embedding</c>, <c>visual.attnpool.positional_embedding</c>) made for another image size.</summary>
    /// <param name="weights">The checkpoint.</param>
    protected override StateDict? AdaptCheckpoint(StateDict weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        string key = Config.Vision.IsResNet ? "visual.attnpool.positional_embedding" : "visual.positional_embedding";
        int grid = Config.Vision.IsResNet ? ImageSize / 32 : ImageSize / Config.Vision.PatchSize!.Value;
        if (!weights.TryGetValue(key, out var pos) || pos.dim() != 2 || pos.shape[0] == (long)grid * grid + 1) return null;
        var copy = new StateDict();
        try
        {
            foreach (var (name, tensor) in weights)
            {
                if (name != key)
                {
                    copy.Add(name, tensor.alias());
                    continue;
                }
                using var batched = tensor.unsqueeze(0);
                using var resampled = VisionTransformer.ResamplePositionEmbedding(batched, grid);
                copy.Add(name, resampled.squeeze(0));
            }
            return copy;
        }
        catch
        {
            copy.Dispose();
            throw;
        }
    }

    private void CheckSize(Tensor x)
    {
        if (x.shape[2] != ImageSize || x.shape[3] != ImageSize)
            throw new ArgumentException(
                $"{GetName()} was built for {ImageSize}×{ImageSize} inputs; got {x.shape[2]}×{x.shape[3]}. Create it with ModelOptions.ImageSize = {x.shape[2]} " +
                "(weights for another size are resampled when loaded), or resize the images to its size.", nameof(x));
    }

    private static ClipVisionConfig VisionFor(string name, ClipModelConfig config, ModelOptions options)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (options.InChannels != 3)
            throw new ArgumentException($"{name} takes RGB images (InChannels = 3); got InChannels = {options.InChannels}.", nameof(options));
        int size = options.ImageSize ?? config.Vision.ImageSize;
        int multiple = config.Vision.PatchSize ?? 32;
        if (size % multiple != 0)
            throw new ArgumentException(
                $"{name}: ImageSize {size} is not a multiple of {multiple} ({(config.Vision.IsResNet ? "the ResNet's total stride" : "the patch size")}).", nameof(options));
        return config.Vision with { ImageSize = size };
    }

    private static IReadOnlyList<FeatureInfo> Prefixed(IReadOnlyList<FeatureInfo> stages) =>
        stages.Select(s => s with { ModuleName = "visual." + s.ModuleName }).ToArray();
}

/// <summary>
/// Registers the image towers of OpenCLIP's <c>ViT-B-32</c>, <c>ViT-B-16</c>, <c>ViT-L-14</c> (and their <c>-quickgelu</c> forms, for
/// OpenAI's original checkpoints) and <c>RN50</c> as backbones (<see cref="ClipImageBackbone"/>), with CLIP's preprocessing.
/// </summary>
public sealed class ClipImageFamily : IModelFamily
{
    /// <summary>The registered names of the family's models, one constant each (the <c>CnnTrainer</c> factories name models by them).</summary>
    public static class Names
    {
        /// <summary><c>clip_vit_b32</c>.</summary>
        public const string ClipVitB32 = "clip_vit_b32";

        /// <summary><c>clip_vit_b32_quickgelu</c>.</summary>
        public const string ClipVitB32QuickGelu = "clip_vit_b32_quickgelu";

        /// <summary><c>clip_vit_b16</c>.</summary>
        public const string ClipVitB16 = "clip_vit_b16";

        /// <summary><c>clip_vit_b16_quickgelu</c>.</summary>
        public const string ClipVitB16QuickGelu = "clip_vit_b16_quickgelu";

        /// <summary><c>clip_vit_l14</c>.</summary>
        public const string ClipVitL14 = "clip_vit_l14";

        /// <summary><c>clip_vit_l14_quickgelu</c>.</summary>
        public const string ClipVitL14QuickGelu = "clip_vit_l14_quickgelu";

        /// <summary><c>clip_rn50</c>.</summary>
        public const string ClipRN50 = "clip_rn50";
    }

    /// <summary>Family name used in <see cref="ModelInfo.Family"/>.</summary>
    public const string Family = "clip";

    /// <summary>The registered names and the OpenCLIP model each is the image tower of.</summary>
    public static IReadOnlyList<(string Name, string OpenClipName)> Towers { get; } =
    [
        (ClipImageFamily.Names.ClipVitB32, "ViT-B-32"),
        (ClipImageFamily.Names.ClipVitB32QuickGelu, "ViT-B-32-quickgelu"),
        (ClipImageFamily.Names.ClipVitB16, "ViT-B-16"),
        (ClipImageFamily.Names.ClipVitB16QuickGelu, "ViT-B-16-quickgelu"),
        (ClipImageFamily.Names.ClipVitL14, "ViT-L-14"),
        (ClipImageFamily.Names.ClipVitL14QuickGelu, "ViT-L-14-quickgelu"),
        (ClipImageFamily.Names.ClipRN50, "RN50"),
    ];

    /// <inheritdoc />
    public IEnumerable<ModelDefinition> Models =>
        Towers.Select(t => new ModelDefinition(t.Name, Family, Config(ClipModels.Get(t.OpenClipName)),
            (o, d) => new ClipImageBackbone(t.Name, ClipModels.Get(t.OpenClipName), o, d)));

    /// <summary>The registered image tower of an OpenCLIP model (<c>clip_vit_b32</c> for <c>ViT-B-32</c>), or null for one not registered.</summary>
    /// <param name="openClipName">OpenCLIP's model name (case-insensitive).</param>
    public static string? ModelFor(string openClipName) =>
        Towers.FirstOrDefault(t => string.Equals(t.OpenClipName, openClipName, StringComparison.OrdinalIgnoreCase)).Name;

    /// <summary>
    /// OpenCLIP's preprocessing of the tower: its image size, bicubic resize of the shorter side, centre crop of the whole
    /// (crop_pct 1), OpenAI CLIP's mean and std; no pretrained classifier.
    /// </summary>
    /// <param name="config">The CLIP model.</param>
    public static PretrainedConfig Config(ClipModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        int size = config.Vision.ImageSize;
        return new PretrainedConfig(new InputSize(3, size, size), PretrainedConfig.ClipMean, PretrainedConfig.ClipStd, 1.0, "bicubic",
            "visual.conv1", "head", 0, $"OpenCLIP {config.Name} image tower");
    }
}
