using Cnn.Backbones.Compute;
using Cnn.Backbones.Native;
using Cnn.Backbones.Onnx.Export;
using Cnn.Backbones.Weights;
using Cnn.Backbones.Weights.Catalog;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Models;

/// <summary>Architecture of a Vision Transformer variant, as torchvision's <c>vit_*</c> builders define it.</summary>
/// <param name="Name">Variant name.</param>
/// <param name="PatchSize">Patch size (stride of <c>conv_proj</c>).</param>
/// <param name="Layers">Encoder blocks.</param>
/// <param name="Heads">Attention heads.</param>
/// <param name="HiddenDim">Token width.</param>
/// <param name="MlpDim">Hidden width of the MLP.</param>
/// <param name="PretrainedConfig">Configuration of torchvision's IMAGENET1K_V1 weights (their image size is the default).</param>
public sealed record VisionTransformerArchitecture(string Name, int PatchSize, int Layers, int Heads, int HiddenDim, int MlpDim, PretrainedConfig PretrainedConfig);

/// <summary>
/// torchvision's VisionTransformer (no representation layer, dropout 0): <c>class_token</c>, <c>conv_proj</c> (patch embedding),
/// <c>encoder</c> (<c>pos_embedding</c>, <c>layers.encoder_layer_i</c> pre-norm blocks with <c>ln_1</c>, <c>self_attention</c>,
/// <c>ln_2</c>, <c>mlp.0/3</c>, and the final <c>ln</c>, LayerNorm eps 1e-6) and <c>heads.head</c>.
/// </summary>
/// <remarks>
/// <para><see cref="Backbone.ForwardFeatures"/> returns the normalised tokens [N, 1 + L, D] (class token first, L = (S / patch)²).
/// <see cref="Backbone.ForwardHead"/> pools them by the class token (torchvision's behaviour, the default) or by the mean of the patch
/// tokens (<see cref="ModelOptions.GlobalPool"/> = <c>"avg"</c>, timm's option); pre-logits are the pooled [N, D] vector.</para>
/// <para><b>Feature info.</b> As timm reports it, one entry per encoder block (<c>encoder.layers.encoder_layer_i</c>), D channels and
/// reduction = patch size. <see cref="Backbone.ForwardStages"/> returns those blocks' outputs as <b>tokens</b> [N, 1 + L, D]
/// (before the final norm, class token included), not maps; <see cref="TokensToMap"/> turns one into [N, D, S/p, S/p].</para>
/// <para><b>Image size.</b> The position embedding depends on the input size: <see cref="ModelOptions.ImageSize"/> (default the
/// pretrained 224) fixes it, and inputs must have that size. Weights made for another size are adapted on load with timm's
/// <c>resample_abs_pos_embed</c> rule with its defaults: the class-token entry is kept and the patch grid is resized by antialiased
/// bicubic interpolation (<c>align_corners=False</c>).</para>
/// </remarks>
public sealed class VisionTransformer : Backbone
{
    private readonly Parameter class_token;
    private readonly PrecisionConv2d conv_proj;
    private readonly ViTEncoder encoder;
    private readonly ModuleContainer? heads;
    private nn.Module<Tensor, Tensor>? _head;
    private readonly bool _tokenPool;

    /// <summary>Builds the network with torchvision's initialisation.</summary>
    /// <param name="architecture">Variant to build.</param>
    /// <param name="options">Creation options (<see cref="ModelOptions.ImageSize"/>, <see cref="ModelOptions.GlobalPool"/>).</param>
    /// <param name="device">Device for the parameters; null for the default. The meta device builds without memory.</param>
    public VisionTransformer(VisionTransformerArchitecture architecture, ModelOptions? options = null, Device? device = null)
        : base(architecture.Name, options ??= new ModelOptions(), architecture.HiddenDim, FeatureInfoOf(architecture), architecture.PretrainedConfig)
    {
        Architecture = architecture;
        ImageSize = options.ImageSize ?? architecture.PretrainedConfig.InputSize.Height;
        if (ImageSize % architecture.PatchSize != 0)
            throw new ArgumentException($"{architecture.Name}: ImageSize {ImageSize} is not a multiple of the patch size {architecture.PatchSize}.", nameof(options));
        _tokenPool = options.GlobalPool is null or "token";
        int d = architecture.HiddenDim;
        int grid = ImageSize / architecture.PatchSize;
        class_token = new Parameter(zeros(1, 1, d, device: device));
        register_parameter("class_token", class_token);
        conv_proj = Ops.Conv2d(options.InChannels, d, architecture.PatchSize, stride: architecture.PatchSize, device: device);
        register_module("conv_proj", conv_proj);
        encoder = new ViTEncoder(grid * grid + 1, architecture.Layers, architecture.Heads, d, architecture.MlpDim, device);
        register_module("encoder", encoder);
        if (!options.FeaturesOnly)
        {
            heads = new ModuleContainer("Sequential");
            _head = CreateClassifier(options.NumClasses, device);
            heads.Set("head", _head);
            register_module("heads", heads);
        }
        var groups = new List<StageGroup> { new("stem", ["class_token.", "conv_proj.", "encoder.pos_embedding."]) };
        for (int i = 0; i < architecture.Layers; i++)
        {
            string prefix = $"encoder.layers.encoder_layer_{i}.";
            groups.Add(new StageGroup($"block{i}", i == architecture.Layers - 1 ? [prefix, "encoder.ln."] : [prefix]));
        }
        groups.Add(new StageGroup("head", ["heads."]));
        StageGroups = groups;
        if (!Layers.IsMeta(device)) Initialize();
    }

    /// <summary>The architecture this model was built from.</summary>
    public VisionTransformerArchitecture Architecture { get; }

    /// <summary>The input size (square) the position embedding is made for.</summary>
    public int ImageSize { get; }

    /// <inheritdoc />
    public override int? FixedInputSize => ImageSize;

    /// <summary>Side of the patch grid, <see cref="ImageSize"/> / patch size.</summary>
    public int GridSize => ImageSize / Architecture.PatchSize;

    /// <inheritdoc />
    public override IReadOnlyList<StageGroup> StageGroups { get; }

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? Classifier { get => _head; set => _head = value; }

    /// <summary><c>encoder.ln</c> on the last encoder block's tokens: <see cref="Backbone.ForwardFeatures"/> returns the normalised
    /// tokens [N, 1 + L, D].</summary>
    /// <param name="lastStage">The last encoder block's tokens.</param>
    protected override Tensor FinishFeatures(Tensor lastStage) => encoder.Norm(lastStage);

    /// <inheritdoc />
    protected override Tensor ForwardStage(int index, Tensor x)
    {
        if (index < 0 || index >= Architecture.Layers)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"{GetName()} has feature stages 0..{Architecture.Layers - 1}.");
        if (index > 0) return encoder.Block(index, x);
        using var scope = NewDisposeScope();
        if (x.shape[2] != ImageSize || x.shape[3] != ImageSize)
            throw new ArgumentException(
                $"{GetName()} was built for {ImageSize}×{ImageSize} inputs; got {x.shape[2]}×{x.shape[3]}. Create it with ModelOptions.ImageSize = {x.shape[2]} " +
                "(weights for another size are resampled when loaded).", nameof(x));
        var patches = conv_proj.call(x);
        long n = patches.shape[0];
        patches = patches.reshape(n, Architecture.HiddenDim, -1).permute(0, 2, 1);
        var tokens = cat([class_token.expand(n, -1, -1), patches], 1);
        return encoder.Block(0, encoder.Embed(tokens)).MoveToOuterDisposeScope();
    }

    /// <summary>The class token (default) or the mean of the patch tokens (<c>GlobalPool = "avg"</c>), [N, D].</summary>
    /// <param name="x">Tokens from <see cref="Backbone.ForwardFeatures"/>.</param>
    protected override Tensor ForwardPool(Tensor x)
    {
        using var scope = NewDisposeScope();
        var pooled = _tokenPool ? x[.., 0] : x[.., 1..].mean([1]);
        return pooled.contiguous().MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    private protected override string ExportStage(int index, OnnxExportContext context, string x)
    {
        if (index > 0) return encoder.ExportBlock(context, index, x);
        context.RequireFixedSize($"its position embedding is built for {ImageSize}×{ImageSize} inputs");
        var patches = context.Transpose(context.Reshape(context.Emit(conv_proj, x), 0, Architecture.HiddenDim, -1), 0, 2, 1);
        // The class token expanded to [N, 1, D] for the symbolic batch N.
        var batch = context.Op("Shape", [patches], OnnxGraphBuilder.Int("start", 0), OnnxGraphBuilder.Int("end", 1));
        var target = context.Concat(0, batch, context.Builder.Longs(1, Architecture.HiddenDim));
        var token = context.Op("Expand", [context.Parameter(this, "class_token", class_token), target]);
        return encoder.ExportBlock(context, 0, encoder.ExportEmbed(context, context.Concat(1, token, patches)));
    }

    /// <inheritdoc />
    private protected override string ExportFinishFeatures(OnnxExportContext context, string lastStage) => encoder.ExportNorm(context, lastStage);

    /// <summary>The class token's vector, or the mean of the patch tokens (<see cref="ModelOptions.GlobalPool"/> = "avg").</summary>
    /// <param name="context">The graph being written.</param>
    /// <param name="features">The normalised tokens [N, L, D].</param>
    private protected override string ExportPool(OnnxExportContext context, string features)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (_tokenPool) return context.Op("Gather", [features, context.Builder.LongScalar(0)], OnnxGraphBuilder.Int("axis", 1));
        var patches = context.Op("Slice", [features, context.Builder.Longs(1), context.Builder.Longs(long.MaxValue), context.Builder.Longs(1)]);
        return context.Op("ReduceMean", [patches], OnnxGraphBuilder.Ints("axes", [1]), OnnxGraphBuilder.Int("keepdims", 0));
    }

    /// <summary>Resamples a checkpoint's <c>encoder.pos_embedding</c> made for another image size to this model's grid.</summary>
    /// <param name="weights">The checkpoint.</param>
    protected override StateDict? AdaptCheckpoint(StateDict weights)
    {
        const string key = "encoder.pos_embedding";
        if (!weights.TryGetValue(key, out var pos) || pos.dim() != 3) return null;
        long expected = (long)GridSize * GridSize + 1;
        if (pos.shape[1] == expected) return null;
        var copy = new StateDict();
        try
        {
            foreach (var (name, tensor) in weights)
                copy.Add(name, name == key ? ResamplePositionEmbedding(tensor, GridSize) : tensor.alias());
            return copy;
        }
        catch
        {
            copy.Dispose();
            throw;
        }
    }

    /// <summary>
    /// timm's <c>resample_abs_pos_embed</c> for one prefix (class) token: keeps the first entry and resizes the square patch grid
    /// bicubically (<c>align_corners=False</c>, antialiased as timm's default <c>antialias=True</c>, which matters when the grid
    /// shrinks) to <paramref name="newGrid"/>².
    /// </summary>
    /// <param name="positionEmbedding">[1, 1 + g², D] with a square grid g × g.</param>
    /// <param name="newGrid">Side of the new grid.</param>
    /// <exception cref="ArgumentException">The embedding's grid is not square.</exception>
    public static Tensor ResamplePositionEmbedding(Tensor positionEmbedding, int newGrid)
    {
        long tokens = positionEmbedding.shape[1] - 1;
        long old = (long)Math.Round(Math.Sqrt(tokens));
        if (positionEmbedding.dim() != 3 || old * old != tokens)
            throw new ArgumentException($"A position embedding [1, 1 + g², D] with a square grid is needed; got [{string.Join(", ", positionEmbedding.shape)}].", nameof(positionEmbedding));
        using var scope = NewDisposeScope();
        long d = positionEmbedding.shape[2];
        var prefix = positionEmbedding[.., ..1];
        var grid = positionEmbedding[.., 1..].reshape(1, old, old, d).permute(0, 3, 1, 2).to_type(ScalarType.Float32);
        grid = nn.functional.interpolate(grid, [newGrid, newGrid], mode: InterpolationMode.Bicubic, align_corners: false, antialias: true);
        grid = grid.permute(0, 2, 3, 1).reshape(1, (long)newGrid * newGrid, d).to_type(positionEmbedding.dtype);
        return cat([prefix, grid], 1).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>Turns block tokens [N, 1 + L, D] into a map [N, D, g, g] (the class token dropped).</summary>
    /// <param name="tokens">Tokens from <see cref="Backbone.ForwardStages"/> or <see cref="Backbone.ForwardFeatures"/>.</param>
    public Tensor TokensToMap(Tensor tokens)
    {
        using var scope = NewDisposeScope();
        return tokens[.., 1..].transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], GridSize, GridSize).contiguous().MoveToOuterDisposeScope();
    }

    private void Initialize()
    {
        using var noGrad = no_grad();
        long fanIn = conv_proj.in_channels * conv_proj.kernel_size[0] * conv_proj.kernel_size[1];
        Layers.TruncatedNormal(conv_proj.weight, mean: 0, std: Math.Sqrt(1.0 / fanIn), a: -2, b: 2);
        nn.init.zeros_(conv_proj.bias!);
        encoder.Initialize();
        if (_head is PrecisionLinear head)
        {
            nn.init.zeros_(head.weight);
            nn.init.zeros_(head.bias);
        }
    }

    private static IReadOnlyList<FeatureInfo> FeatureInfoOf(VisionTransformerArchitecture a) =>
        Enumerable.Range(0, a.Layers).Select(i => new FeatureInfo(a.HiddenDim, a.PatchSize, $"encoder.layers.encoder_layer_{i}")).ToArray();
}

/// <summary>torchvision's ViT <c>Encoder</c>: <c>pos_embedding</c>, <c>layers</c> (<c>encoder_layer_i</c>) and the final <c>ln</c>.</summary>
internal sealed class ViTEncoder : nn.Module<Tensor, Tensor>
{
    private readonly Parameter pos_embedding;
    private readonly Sequential layers;
    private readonly LayerNorm ln;
    private readonly EncoderBlock[] _blocks;

    /// <summary>Creates the encoder.</summary>
    /// <param name="sequenceLength">Tokens including the class token.</param>
    /// <param name="numLayers">Blocks.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="hiddenDim">Token width.</param>
    /// <param name="mlpDim">MLP hidden width.</param>
    /// <param name="device">Device for the parameters, or null.</param>
    public ViTEncoder(int sequenceLength, int numLayers, int heads, int hiddenDim, int mlpDim, Device? device = null) : base("Encoder")
    {
        pos_embedding = new Parameter(zeros(1, sequenceLength, hiddenDim, device: device));
        _blocks = Enumerable.Range(0, numLayers).Select(_ => new EncoderBlock(heads, hiddenDim, mlpDim, device)).ToArray();
        layers = nn.Sequential(_blocks.Select((b, i) => ($"encoder_layer_{i}", (nn.Module<Tensor, Tensor>)b)).ToArray());
        ln = nn.LayerNorm(hiddenDim, eps: 1e-6, device: device);
        RegisterComponents();
    }

    /// <summary>Adds the position embedding to the tokens (class token first).</summary>
    /// <param name="tokens">[N, 1 + L, D].</param>
    public Tensor Embed(Tensor tokens) => tokens.Plus(pos_embedding);

    /// <summary>Runs block <paramref name="index"/>.</summary>
    /// <param name="index">Block index.</param>
    /// <param name="x">Tokens.</param>
    public Tensor Block(int index, Tensor x) => _blocks[index].call(x);

    /// <summary>The final LayerNorm.</summary>
    /// <param name="x">Tokens.</param>
    public Tensor Norm(Tensor x) => ln.call(x);

    /// <summary><see cref="Embed"/> as ONNX.</summary>
    /// <param name="context">The graph being written.</param>
    /// <param name="tokens">The tokens [N, L, D].</param>
    public string ExportEmbed(OnnxExportContext context, string tokens)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Add(tokens, context.Parameter(this, "pos_embedding", pos_embedding));
    }

    /// <summary><see cref="Block"/> as ONNX.</summary>
    /// <param name="context">The graph being written.</param>
    /// <param name="index">Block index.</param>
    /// <param name="x">The tokens.</param>
    public string ExportBlock(OnnxExportContext context, int index, string x)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Emit(_blocks[index], x);
    }

    /// <summary><see cref="Norm"/> as ONNX.</summary>
    /// <param name="context">The graph being written.</param>
    /// <param name="x">The tokens.</param>
    public string ExportNorm(OnnxExportContext context, string x)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Emit(ln, x);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return ln.call(layers.call(Embed(x))).MoveToOuterDisposeScope();
    }

    internal void Initialize()
    {
        nn.init.normal_(pos_embedding, 0, 0.02);
        foreach (var block in _blocks) block.Initialize();
    }
}

/// <summary>torchvision's ViT <c>EncoderBlock</c>: <c>x + attn(ln_1(x))</c>, then <c>+ mlp(ln_2(·))</c> (GELU MLP, keys <c>mlp.0/3</c>).</summary>
internal sealed class EncoderBlock : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly LayerNorm ln_1;
    private readonly SelfAttention self_attention;
    private readonly LayerNorm ln_2;
    private readonly Sequential mlp;

    /// <summary>Creates the block.</summary>
    /// <param name="heads">Attention heads.</param>
    /// <param name="hiddenDim">Token width.</param>
    /// <param name="mlpDim">MLP hidden width.</param>
    /// <param name="device">Device for the parameters, or null.</param>
    public EncoderBlock(int heads, int hiddenDim, int mlpDim, Device? device = null) : base(nameof(EncoderBlock))
    {
        ln_1 = nn.LayerNorm(hiddenDim, eps: 1e-6, device: device);
        self_attention = new SelfAttention(hiddenDim, heads, device);
        ln_2 = nn.LayerNorm(hiddenDim, eps: 1e-6, device: device);
        mlp = nn.Sequential(Ops.Linear(hiddenDim, mlpDim, device: device), nn.GELU(), nn.Dropout(0), Ops.Linear(mlpDim, hiddenDim, device: device), nn.Dropout(0));
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = self_attention.call(ln_1.call(input)).Plus(input);
        return x.Plus(mlp.call(ln_2.call(x))).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public string ExportOnnx(OnnxExportContext context, string input)
    {
        ArgumentNullException.ThrowIfNull(context);
        var x = context.Add(context.EmitAll(input, [ln_1, self_attention]), input);
        return context.Add(x, context.EmitAll(x, [ln_2, mlp]));
    }

    internal void Initialize()
    {
        self_attention.Initialize();
        foreach (var linear in mlp.children().OfType<PrecisionLinear>())
        {
            nn.init.xavier_uniform_(linear.weight);
            nn.init.normal_(linear.bias!, 0, 1e-6);
        }
    }
}

/// <summary>
/// Multi-head self-attention with PyTorch <c>nn.MultiheadAttention</c>'s parameters (<c>in_proj_weight</c> [3D, D],
/// <c>in_proj_bias</c>, <c>out_proj</c>), batch-first, no dropout: softmax(Q Kᵀ / √d) V per head.
/// </summary>
internal sealed class SelfAttention : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly Parameter in_proj_weight;
    private readonly Parameter in_proj_bias;
    private readonly PrecisionLinear out_proj;
    private readonly int _heads;

    /// <summary>Creates the layer.</summary>
    /// <param name="dim">Token width.</param>
    /// <param name="heads">Heads; must divide <paramref name="dim"/>.</param>
    /// <param name="device">Device for the parameters, or null.</param>
    public SelfAttention(int dim, int heads, Device? device = null) : base("MultiheadAttention")
    {
        if (dim % heads != 0) throw new ArgumentException($"The width {dim} is not divisible by {heads} heads.", nameof(heads));
        _heads = heads;
        in_proj_weight = new Parameter(empty(3L * dim, dim, device: device));
        in_proj_bias = new Parameter(zeros(3L * dim, device: device));
        out_proj = Ops.Linear(dim, dim, device: device);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0], l = x.shape[1], d = x.shape[2], hd = d / _heads;
        var qkv = nn.functional.linear(x, in_proj_weight, in_proj_bias).reshape(n, l, 3, _heads, hd).permute(2, 0, 3, 1, 4);
        var q = qkv[0].Times(1.0 / Math.Sqrt(hd));
        var attention = q.matmul(qkv[1].transpose(-2, -1)).softmax(-1);
        var output = attention.matmul(qkv[2]).transpose(1, 2).reshape(n, l, d);
        return out_proj.call(output).MoveToOuterDisposeScope();
    }

    /// <summary>The same computation as ONNX: the batch and sequence axes stay symbolic (Reshape's 0 copies them).</summary>
    /// <param name="context">The graph being written.</param>
    /// <param name="input">The tokens [N, L, D].</param>
    public string ExportOnnx(OnnxExportContext context, string input)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.PackedSelfAttention(this, input, in_proj_weight, in_proj_bias, _heads, out_proj);
    }

    internal void Initialize()
    {
        nn.init.xavier_uniform_(in_proj_weight);
        nn.init.zeros_(in_proj_bias);
        nn.init.zeros_(out_proj.bias!);
    }
}

/// <summary>Registers torchvision's ViT-B/16, B/32, L/16 and L/32 with their IMAGENET1K_V1 configurations.</summary>
public sealed partial class VisionTransformerFamily : IModelFamily
{
    /// <summary>The registered names of the family's models, one constant each (the <c>CnnTrainer</c> factories name models by them).</summary>
    public static class Names
    {
        /// <summary><c>vit_b_16</c>.</summary>
        public const string VitB16 = "vit_b_16";

        /// <summary><c>vit_b_32</c>.</summary>
        public const string VitB32 = "vit_b_32";

        /// <summary><c>vit_l_16</c>.</summary>
        public const string VitL16 = "vit_l_16";

        /// <summary><c>vit_l_32</c>.</summary>
        public const string VitL32 = "vit_l_32";
    }

    /// <summary>Family name used in <see cref="ModelInfo.Family"/>.</summary>
    public const string Family = "vit";

    /// <summary>Auto: bfloat16 (it trained faster so); contiguous, since its token stages gain nothing from channels-last.</summary>
    public AutoCompute AutoCompute { get; } = new(BFloat16: true, ChannelsLastInBFloat16: false, ChannelsLastInFloat32: false);

    /// <summary>The architectures, as torchvision defines them (crop 224; resize 256, ViT-L/16 242; bilinear).</summary>
    public static IReadOnlyList<VisionTransformerArchitecture> Architectures { get; } =
    [
        new(VisionTransformerFamily.Names.VitB16, 16, 12, 12, 768, 3072, Config(256)),
        new(VisionTransformerFamily.Names.VitB32, 32, 12, 12, 768, 3072, Config(256)),
        new(VisionTransformerFamily.Names.VitL16, 16, 24, 16, 1024, 4096, Config(242)),
        new(VisionTransformerFamily.Names.VitL32, 32, 24, 16, 1024, 4096, Config(256)),
    ];

    /// <inheritdoc />
    public IEnumerable<ModelDefinition> Models =>
        Architectures.Select(a => new ModelDefinition(a.Name, Family, a.PretrainedConfig, (o, d) => new VisionTransformer(a, o, d))
        {
            Capabilities = ModelCapabilities.Cnn with { GlobalPools = ["token", "avg"] },
        }.WithWeights(WeightsEnums));

    private static PretrainedConfig Config(int resize) =>
        PretrainedConfig.TorchvisionImageNet(224, resize, "conv_proj", "heads.head", "torchvision IMAGENET1K_V1");
}
