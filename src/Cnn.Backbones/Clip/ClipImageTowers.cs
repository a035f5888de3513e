using Cnn.Backbones.Native;
using Cnn.Backbones.Compute;
using Cnn.Backbones.Models;
using Cnn.Backbones.Onnx.Export;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Clip;

/// <summary>A CLIP image tower (OpenCLIP's <c>visual</c>): normalised images [N, 3, S, S] to embeddings [N, EmbedDim].</summary>
public abstract class ClipImageTower : nn.Module<Tensor, Tensor>
{
    /// <summary>Names the module.</summary>
    /// <param name="name">Module name.</param>
    /// <param name="imageSize">Input side.</param>
    /// <param name="outputDim">Embedding width.</param>
    protected ClipImageTower(string name, int imageSize, int outputDim) : base(name)
    {
        ImageSize = imageSize;
        OutputDim = outputDim;
    }

    /// <summary>Input side in pixels (square); the position embedding is made for it.</summary>
    public int ImageSize { get; }

    /// <summary>Width of the image embedding.</summary>
    public int OutputDim { get; }

    /// <summary>
    /// The feature stages of a tower, shallow to deep, with module names relative to the tower: the ViT's blocks (width, reduction
    /// = patch); the ResNet's stem up to <c>act3</c> (stride 2) and <c>layer1..4</c> (strides 4 to 32).
    /// </summary>
    /// <param name="config">The tower.</param>
    internal static IReadOnlyList<FeatureInfo> StageInfoOf(ClipVisionConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        int w = config.Width;
        return config.PatchSize is { } patch
            ? Enumerable.Range(0, config.Layers[0]).Select(i => new FeatureInfo(w, patch, $"transformer.resblocks.{i}")).ToArray()
            : [new(w, 2, "act3"), new(w * 4, 4, "layer1"), new(w * 8, 8, "layer2"), new(w * 16, 16, "layer3"), new(w * 32, 32, "layer4")];
    }

    /// <summary>Parameter groups of the tower, input to output, with prefixes relative to the tower.</summary>
    internal abstract IReadOnlyList<StageGroup> Groups { get; }

    /// <summary>Runs stage <paramref name="index"/> of <see cref="StageInfoOf"/> on the previous stage's output (the image for 0).</summary>
    /// <param name="index">Stage index.</param>
    /// <param name="x">Input of the stage.</param>
    internal abstract Tensor ForwardStage(int index, Tensor x);

    /// <summary>What follows the last stage before pooling (ViT: <c>ln_post</c> on every token); nothing by default.</summary>
    /// <param name="lastStage">The last stage's output.</param>
    internal virtual Tensor FinishFeatures(Tensor lastStage) => lastStage.alias();

    /// <summary>The embedding [N, OutputDim] of the features (ViT: the class token through <c>proj</c>; ResNet: <c>attnpool</c>).</summary>
    /// <param name="features">The output of <see cref="FinishFeatures"/>.</param>
    internal abstract Tensor Pool(Tensor features);

    /// <summary>Writes <see cref="ForwardStage"/> as ONNX.</summary>
    /// <param name="index">Stage index.</param>
    /// <param name="context">The graph being written.</param>
    /// <param name="x">Input of the stage.</param>
    internal abstract string ExportStage(int index, OnnxExportContext context, string x);

    /// <summary>Writes <see cref="FinishFeatures"/> as ONNX.</summary>
    /// <param name="context">The graph being written.</param>
    /// <param name="lastStage">The last stage's output.</param>
    internal virtual string ExportFinishFeatures(OnnxExportContext context, string lastStage) => lastStage;

    /// <summary>Writes <see cref="Pool"/> as ONNX.</summary>
    /// <param name="context">The graph being written.</param>
    /// <param name="features">The features.</param>
    internal abstract string ExportPool(OnnxExportContext context, string features);

    /// <summary>Throws a clear error for an input that is not [N, 3, ImageSize, ImageSize].</summary>
    /// <param name="x">The input batch.</param>
    protected void CheckInput(Tensor x)
    {
        if (x.dim() != 4 || x.shape[1] != 3 || x.shape[2] != ImageSize || x.shape[3] != ImageSize)
            throw new ArgumentException($"The CLIP image tower needs images [N, 3, {ImageSize}, {ImageSize}]; got [{string.Join(", ", x.shape)}]. " +
                                        $"Resize (bicubic) and centre-crop to {ImageSize} px first.", nameof(x));
    }
}

/// <summary>
/// OpenCLIP's <c>VisionTransformer</c>: patch embedding <c>conv1</c> (no bias), <c>class_embedding</c>, <c>positional_embedding</c>,
/// <c>ln_pre</c>, <c>transformer.resblocks.i</c>, <c>ln_post</c> on the tokens, the class token projected by <c>proj</c>.
/// </summary>
public sealed class ClipVisionTransformer : ClipImageTower
{
    private readonly PrecisionConv2d conv1;
    private readonly Parameter class_embedding;
    private readonly Parameter positional_embedding;
    private readonly LayerNorm ln_pre;
    private readonly ClipTransformer transformer;
    private readonly LayerNorm ln_post;
    private readonly Parameter proj;
    private readonly int _width;

    /// <summary>Builds the tower with OpenAI CLIP's initialisation.</summary>
    /// <param name="config">The tower (a ViT: <see cref="ClipVisionConfig.PatchSize"/> set).</param>
    /// <param name="outputDim">Embedding width.</param>
    /// <param name="quickGelu">QuickGELU in the MLPs.</param>
    /// <param name="device">Device for the parameters; null for the default. The meta device builds without memory or initialisation.</param>
    public ClipVisionTransformer(ClipVisionConfig config, int outputDim, bool quickGelu, Device? device = null) : base("VisionTransformer", config.ImageSize, outputDim)
    {
        ArgumentNullException.ThrowIfNull(config);
        int patch = config.PatchSize ?? throw new ArgumentException("A ViT image tower needs a patch size.", nameof(config));
        if (config.ImageSize % patch != 0) throw new ArgumentException($"Image size {config.ImageSize} is not a multiple of the patch size {patch}.", nameof(config));
        _width = config.Width;
        int grid = config.ImageSize / patch;
        double scale = Math.Pow(_width, -0.5);
        _patch = patch;
        bool meta = Layers.IsMeta(device);
        conv1 = Ops.Conv2d(3, _width, patch, stride: patch, bias: false, device: device);
        class_embedding = new Parameter(meta ? empty(_width, device: device) : randn(_width).TimesInPlace(scale));
        positional_embedding = new Parameter(meta ? empty(grid * grid + 1, _width, device: device) : randn(grid * grid + 1, _width).TimesInPlace(scale));
        ln_pre = nn.LayerNorm(_width, device: device);
        transformer = new ClipTransformer(_width, config.Layers[0], config.Heads, config.MlpRatio, quickGelu, causal: false, device);
        ln_post = nn.LayerNorm(_width, device: device);
        proj = new Parameter(meta ? empty(_width, outputDim, device: device) : randn(_width, outputDim).TimesInPlace(scale));
        RegisterComponents();
        if (device is not null && !meta) this.to(device);
        if (!meta)
            using (no_grad()) transformer.Initialize();
        var groups = new List<StageGroup> { new("stem", ["conv1.", "class_embedding.", "positional_embedding.", "ln_pre."]) };
        groups.AddRange(Enumerable.Range(0, config.Layers[0]).Select(i => new StageGroup($"block{i}", [$"transformer.resblocks.{i}."])));
        groups.Add(new StageGroup("post", ["ln_post.", "proj."]));
        Groups = groups;
    }

    private readonly int _patch;

    /// <inheritdoc />
    internal override IReadOnlyList<StageGroup> Groups { get; }

    /// <summary>Side of the patch grid.</summary>
    internal int GridSize => ImageSize / _patch;

    /// <summary>The embedded tokens [N, 1 + L, width] after <c>ln_pre</c>, before the first block.</summary>
    private Tensor Embed(Tensor x)
    {
        using var scope = NewDisposeScope();
        var patches = conv1.call(x);
        long n = patches.shape[0];
        patches = patches.reshape(n, _width, -1).permute(0, 2, 1);
        var tokens = cat([class_embedding.reshape(1, 1, _width).expand(n, 1, _width), patches], 1).Plus(positional_embedding);
        return ln_pre.call(tokens).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    internal override Tensor ForwardStage(int index, Tensor x)
    {
        if (index > 0) return transformer.Block(index).call(x);
        using var scope = NewDisposeScope();
        return transformer.Block(0).call(Embed(x)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    internal override Tensor FinishFeatures(Tensor lastStage) => ln_post.call(lastStage);

    /// <inheritdoc />
    internal override Tensor Pool(Tensor features)
    {
        using var scope = NewDisposeScope();
        return features[.., 0].matmul(proj).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    internal override string ExportStage(int index, OnnxExportContext context, string x)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (index > 0) return context.Emit(transformer.Block(index), x);
        context.RequireFixedSize($"its position embedding is built for {ImageSize}×{ImageSize} inputs");
        var patches = context.Transpose(context.Reshape(context.Emit(conv1, x), 0, _width, -1), 0, 2, 1);
        // The class embedding expanded to [N, 1, width] for the symbolic batch N.
        var batch = context.Op("Shape", [patches], OnnxGraphBuilder.Int("start", 0), OnnxGraphBuilder.Int("end", 1));
        var target = context.Concat(0, batch, context.Builder.Longs(1, _width));
        var token = context.Op("Expand", [context.Reshape(context.Parameter(this, "class_embedding", class_embedding), 1, 1, _width), target]);
        var tokens = context.Add(context.Concat(1, token, patches), context.Parameter(this, "positional_embedding", positional_embedding));
        return context.Emit(transformer.Block(0), context.Emit(ln_pre, tokens));
    }

    /// <inheritdoc />
    internal override string ExportFinishFeatures(OnnxExportContext context, string lastStage)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Emit(ln_post, lastStage);
    }

    /// <inheritdoc />
    internal override string ExportPool(OnnxExportContext context, string features)
    {
        ArgumentNullException.ThrowIfNull(context);
        var token = context.Op("Gather", [features, context.Builder.LongScalar(0)], OnnxGraphBuilder.Int("axis", 1));
        return context.Op("MatMul", [token, context.Parameter(this, "proj", proj)]);
    }

    /// <summary>The normalised tokens [N, 1 + L, width] (class token first), before pooling and projection.</summary>
    /// <param name="x">Normalised images [N, 3, S, S].</param>
    public Tensor ForwardTokens(Tensor x)
    {
        CheckInput(x);
        using var scope = NewDisposeScope();
        var patches = conv1.call(x);
        long n = patches.shape[0];
        patches = patches.reshape(n, _width, -1).permute(0, 2, 1);
        var tokens = cat([class_embedding.reshape(1, 1, _width).expand(n, 1, _width), patches], 1).Plus(positional_embedding);
        return ln_post.call(transformer.call(ln_pre.call(tokens))).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return ForwardTokens(x)[.., 0].matmul(proj).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// OpenAI's <c>ModifiedResNet</c>: a three-convolution stem (stride 2, then 1, 1) with an average pool, four stages of
/// anti-aliased bottlenecks (a stride is an average pool after the 3×3 convolution, and before the 1×1 shortcut convolution),
/// and an attention pool (<c>attnpool</c>) whose query is the mean of the final map's positions.
/// </summary>
public sealed class ClipModifiedResNet : ClipImageTower
{
    private readonly nn.Module<Tensor, Tensor>[] _stem;
    private readonly Sequential[] _stages;
    private readonly ClipAttentionPool attnpool;

    /// <summary>Builds the tower.</summary>
    /// <param name="config">The tower (a ResNet: four stage depths).</param>
    /// <param name="outputDim">Embedding width.</param>
    /// <param name="device">Device for the parameters; null for the default. The meta device builds without memory or initialisation.</param>
    public ClipModifiedResNet(ClipVisionConfig config, int outputDim, Device? device = null) : base("ModifiedResNet", config.ImageSize, outputDim)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Layers.Count != 4) throw new ArgumentException("A ModifiedResNet image tower needs four stage depths.", nameof(config));
        int width = config.Width;
        // The stem's modules sit directly on the tower (conv1, bn1, ..., avgpool), as OpenCLIP's keys have them.
        var stemModules = new (string, nn.Module<Tensor, Tensor>)[]
        {
            ("conv1", Ops.Conv2d(3, width / 2, 3, stride: 2, padding: 1, bias: false, device: device)), ("bn1", Ops.BatchNorm2d(width / 2, device: device)), ("act1", nn.ReLU()),
            ("conv2", Ops.Conv2d(width / 2, width / 2, 3, padding: 1, bias: false, device: device)), ("bn2", Ops.BatchNorm2d(width / 2, device: device)), ("act2", nn.ReLU()),
            ("conv3", Ops.Conv2d(width / 2, width, 3, padding: 1, bias: false, device: device)), ("bn3", Ops.BatchNorm2d(width, device: device)), ("act3", nn.ReLU()),
            ("avgpool", nn.AvgPool2d(2)),
        };
        foreach (var (name, module) in stemModules) register_module(name, module);
        _stem = stemModules.Select(m => m.Item2).ToArray();
        int inplanes = width;
        _stages = new Sequential[4];
        for (int s = 0; s < 4; s++)
        {
            int planes = width << s;
            var blocks = new List<nn.Module<Tensor, Tensor>>();
            for (int b = 0; b < config.Layers[s]; b++)
            {
                blocks.Add(new ClipBottleneck(inplanes, planes, b == 0 && s > 0 ? 2 : 1, device));
                inplanes = planes * ClipBottleneck.Expansion;
            }
            _stages[s] = nn.Sequential(blocks.ToArray());
            register_module($"layer{s + 1}", _stages[s]);
        }
        int embed = width * 32;
        attnpool = new ClipAttentionPool(config.ImageSize / 32, embed, config.Heads, outputDim, device);
        register_module("attnpool", attnpool);
        if (!Layers.IsMeta(device))
            using (no_grad()) Initialize();
        Groups =
        [
            new("stem", ["conv1.", "bn1.", "conv2.", "bn2.", "conv3.", "bn3."]),
            new("layer1", ["layer1."]), new("layer2", ["layer2."]), new("layer3", ["layer3."]), new("layer4", ["layer4."]),
            new("attnpool", ["attnpool."]),
        ];
    }

    /// <inheritdoc />
    internal override IReadOnlyList<StageGroup> Groups { get; }

    /// <summary>Side of the attention pool's position grid (image size / 32).</summary>
    internal int GridSize => ImageSize / 32;

    /// <summary>Stage 0 is the stem up to <c>act3</c> (stride 2); stage 1 the stem's average pool and <c>layer1</c>; then <c>layer2..4</c>.</summary>
    /// <param name="index">Stage index.</param>
    /// <param name="x">Input of the stage.</param>
    internal override Tensor ForwardStage(int index, Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = x;
        if (index == 0)
            foreach (var module in _stem[..^1]) y = module.call(y);
        else
            y = _stages[index - 1].call(index == 1 ? _stem[^1].call(y) : y);
        return y.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    internal override Tensor Pool(Tensor features) => attnpool.call(features);

    /// <inheritdoc />
    internal override string ExportStage(int index, OnnxExportContext context, string x)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (index == 0) return context.EmitAll(x, _stem[..^1]);
        return context.Emit(_stages[index - 1], index == 1 ? context.Emit(_stem[^1], x) : x);
    }

    /// <inheritdoc />
    internal override string ExportPool(OnnxExportContext context, string features)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.RequireFixedSize($"its attention pool's position embedding is built for {ImageSize}×{ImageSize} inputs");
        return context.Emit(attnpool, features);
    }

    /// <summary>The final feature map [N, 32·width, S/32, S/32], before the attention pool.</summary>
    /// <param name="x">Normalised images [N, 3, S, S].</param>
    public Tensor ForwardMap(Tensor x)
    {
        CheckInput(x);
        using var scope = NewDisposeScope();
        var y = x;
        foreach (var module in _stem) y = module.call(y);
        foreach (var stage in _stages) y = stage.call(y);
        return y.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return attnpool.call(ForwardMap(x)).MoveToOuterDisposeScope();
    }

    private void Initialize()
    {
        attnpool.Initialize();
        // Zero the last BatchNorm of each residual branch, as OpenAI's CLIP does.
        foreach (var (name, parameter) in named_parameters())
            if (name.EndsWith(".bn3.weight", StringComparison.Ordinal)) nn.init.zeros_(parameter);
    }
}

/// <summary>
/// OpenAI CLIP's anti-aliased bottleneck: 1×1, 3×3, average pool (stride &gt; 1), 1×1 ×4, each convolution followed by BatchNorm;
/// ReLU after each of the first two and after the sum; the shortcut (<c>downsample</c>: average pool, 1×1 convolution <c>.0</c>,
/// BatchNorm <c>.1</c>) when the stride or width changes.
/// </summary>
internal sealed class ClipBottleneck : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    /// <summary>Output width / <c>planes</c>.</summary>
    public const int Expansion = 4;

    private readonly nn.Module<Tensor, Tensor> _conv1, _bn1, _conv2, _bn2, _conv3, _bn3;
    private readonly nn.Module<Tensor, Tensor>? _pool;
    private readonly nn.Module<Tensor, Tensor>? _shortcutPool;
    private readonly Sequential? _downsample;

    /// <summary>Creates the block.</summary>
    /// <param name="inplanes">Input channels.</param>
    /// <param name="planes">Inner width; the output has 4× this.</param>
    /// <param name="stride">1 or 2.</param>
    /// <param name="device">Device for the parameters, or null.</param>
    public ClipBottleneck(int inplanes, int planes, int stride, Device? device = null) : base("Bottleneck")
    {
        // Registered one by one (not by RegisterComponents) so that the keys are exactly OpenCLIP's.
        _conv1 = Register("conv1", Ops.Conv2d(inplanes, planes, 1, bias: false, device: device));
        _bn1 = Register("bn1", Ops.BatchNorm2d(planes, device: device));
        _conv2 = Register("conv2", Ops.Conv2d(planes, planes, 3, padding: 1, bias: false, device: device));
        _bn2 = Register("bn2", Ops.BatchNorm2d(planes, device: device));
        _conv3 = Register("conv3", Ops.Conv2d(planes, planes * Expansion, 1, bias: false, device: device));
        _bn3 = Register("bn3", Ops.BatchNorm2d(planes * Expansion, device: device));
        if (stride > 1) _pool = nn.AvgPool2d(stride);
        if (stride > 1 || inplanes != planes * Expansion)
        {
            _shortcutPool = stride > 1 ? nn.AvgPool2d(stride) : null;
            _downsample = nn.Sequential(("0", Ops.Conv2d(inplanes, planes * Expansion, 1, bias: false, device: device)), ("1", Ops.BatchNorm2d(planes * Expansion, device: device)));
            register_module("downsample", _downsample);
        }
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = _bn1.call(_conv1.call(input)).relu();
        x = _bn2.call(_conv2.call(x)).relu();
        if (_pool is not null) x = _pool.call(x);
        x = _bn3.call(_conv3.call(x));
        var identity = input;
        if (_downsample is not null)
        {
            if (_shortcutPool is not null) identity = _shortcutPool.call(identity);
            identity = _downsample.call(identity);
        }
        return x.Plus(identity).relu().MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public string ExportOnnx(OnnxExportContext context, string input)
    {
        ArgumentNullException.ThrowIfNull(context);
        var x = context.Relu(context.EmitAll(input, [_conv1, _bn1]));
        x = context.Relu(context.EmitAll(x, [_conv2, _bn2]));
        if (_pool is not null) x = context.Emit(_pool, x);
        x = context.EmitAll(x, [_conv3, _bn3]);
        var identity = input;
        if (_downsample is not null)
        {
            if (_shortcutPool is not null) identity = context.Emit(_shortcutPool, identity);
            identity = context.Emit(_downsample, identity);
        }
        return context.Relu(context.Add(x, identity));
    }

    private nn.Module<Tensor, Tensor> Register(string name, nn.Module<Tensor, Tensor> module)
    {
        register_module(name, module);
        return module;
    }
}

/// <summary>
/// OpenAI CLIP's <c>AttentionPool2d</c>: the map's positions and their mean (first) plus <c>positional_embedding</c>; one
/// multi-head attention with the mean as the only query (<c>q_proj</c>, <c>k_proj</c>, <c>v_proj</c>), projected by <c>c_proj</c>.
/// </summary>
internal sealed class ClipAttentionPool : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly Parameter positional_embedding;
    private readonly PrecisionLinear k_proj;
    private readonly PrecisionLinear q_proj;
    private readonly PrecisionLinear v_proj;
    private readonly PrecisionLinear c_proj;
    private readonly int _heads;

    /// <summary>Creates the pool.</summary>
    /// <param name="spatial">Side of the input map.</param>
    /// <param name="embed">Channels of the map.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="outputDim">Output width.</param>
    /// <param name="device">Device for the parameters, or null.</param>
    public ClipAttentionPool(int spatial, int embed, int heads, int outputDim, Device? device = null) : base("AttentionPool2d")
    {
        _heads = heads;
        long positions = (long)spatial * spatial + 1;
        positional_embedding = new Parameter(Layers.IsMeta(device)
            ? empty(positions, embed, device: device)
            : randn(positions, embed).DivideInPlace(Math.Sqrt(embed)).to(device ?? CPU));
        k_proj = Ops.Linear(embed, embed, device: device);
        q_proj = Ops.Linear(embed, embed, device: device);
        v_proj = Ops.Linear(embed, embed, device: device);
        c_proj = Ops.Linear(embed, outputDim, device: device);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        long n = input.shape[0], c = input.shape[1], hd = c / _heads;
        var positions = input.flatten(2).permute(0, 2, 1);
        var tokens = cat([positions.mean([1], keepdim: true), positions], 1).Plus(positional_embedding);
        long l = tokens.shape[1];
        var q = q_proj.call(tokens[.., ..1]).reshape(n, 1, _heads, hd).transpose(1, 2).Times(1.0 / Math.Sqrt(hd));
        var k = k_proj.call(tokens).reshape(n, l, _heads, hd).transpose(1, 2);
        var v = v_proj.call(tokens).reshape(n, l, _heads, hd).transpose(1, 2);
        var pooled = q.matmul(k.transpose(-2, -1)).softmax(-1).matmul(v).transpose(1, 2).reshape(n, c);
        return c_proj.call(pooled).MoveToOuterDisposeScope();
    }

    /// <summary>The same computation as ONNX; the batch axis stays symbolic (Reshape's 0 copies it).</summary>
    /// <param name="context">The graph being written.</param>
    /// <param name="input">The map [N, C, h, w].</param>
    public string ExportOnnx(OnnxExportContext context, string input)
    {
        ArgumentNullException.ThrowIfNull(context);
        long c = positional_embedding.shape[1], hd = c / _heads;
        var positions = context.Transpose(context.Reshape(input, 0, c, -1), 0, 2, 1);
        var mean = context.Op("ReduceMean", [positions], OnnxGraphBuilder.Ints("axes", [1]), OnnxGraphBuilder.Int("keepdims", 1));
        var tokens = context.Add(context.Concat(1, mean, positions), context.Parameter(this, "positional_embedding", positional_embedding));
        var first = context.Op("Slice", [tokens, context.Builder.Longs(0), context.Builder.Longs(1), context.Builder.Longs(1)]);
        var q = context.Mul(context.Transpose(context.Reshape(context.Emit(q_proj, first), 0, 1, _heads, hd), 0, 2, 1, 3),
            context.Builder.Scalar((float)(1.0 / Math.Sqrt(hd))));
        var k = context.Transpose(context.Reshape(context.Emit(k_proj, tokens), 0, -1, _heads, hd), 0, 2, 3, 1);
        var v = context.Transpose(context.Reshape(context.Emit(v_proj, tokens), 0, -1, _heads, hd), 0, 2, 1, 3);
        var attention = context.Op("Softmax", [context.Op("MatMul", [q, k])], OnnxGraphBuilder.Int("axis", -1));
        var pooled = context.Reshape(context.Transpose(context.Op("MatMul", [attention, v]), 0, 2, 1, 3), 0, c);
        return context.Emit(c_proj, pooled);
    }

    internal void Initialize()
    {
        double std = Math.Pow(c_proj.in_features, -0.5);
        foreach (var linear in new[] { q_proj, k_proj, v_proj, c_proj }) nn.init.normal_(linear.weight, 0, std);
    }
}
