using Cnn.Backbones.Native;
using Cnn.Backbones.Compute;
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
    public ClipVisionTransformer(ClipVisionConfig config, int outputDim, bool quickGelu) : base("VisionTransformer", config.ImageSize, outputDim)
    {
        ArgumentNullException.ThrowIfNull(config);
        int patch = config.PatchSize ?? throw new ArgumentException("A ViT image tower needs a patch size.", nameof(config));
        if (config.ImageSize % patch != 0) throw new ArgumentException($"Image size {config.ImageSize} is not a multiple of the patch size {patch}.", nameof(config));
        _width = config.Width;
        int grid = config.ImageSize / patch;
        double scale = Math.Pow(_width, -0.5);
        conv1 = Ops.Conv2d(3, _width, patch, stride: patch, bias: false);
        class_embedding = new Parameter(randn(_width).TimesInPlace(scale));
        positional_embedding = new Parameter(randn(grid * grid + 1, _width).TimesInPlace(scale));
        ln_pre = nn.LayerNorm(_width);
        transformer = new ClipTransformer(_width, config.Layers[0], config.Heads, config.MlpRatio, quickGelu);
        ln_post = nn.LayerNorm(_width);
        proj = new Parameter(randn(_width, outputDim).TimesInPlace(scale));
        RegisterComponents();
        using (no_grad()) transformer.Initialize();
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
        return ln_post.call(transformer.call(ln_pre.call(tokens), null)).MoveToOuterDisposeScope();
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
    public ClipModifiedResNet(ClipVisionConfig config, int outputDim) : base("ModifiedResNet", config.ImageSize, outputDim)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Layers.Count != 4) throw new ArgumentException("A ModifiedResNet image tower needs four stage depths.", nameof(config));
        int width = config.Width;
        // The stem's modules sit directly on the tower (conv1, bn1, ..., avgpool), as OpenCLIP's keys have them.
        var stemModules = new (string, nn.Module<Tensor, Tensor>)[]
        {
            ("conv1", Ops.Conv2d(3, width / 2, 3, stride: 2, padding: 1, bias: false)), ("bn1", Ops.BatchNorm2d(width / 2)), ("act1", nn.ReLU()),
            ("conv2", Ops.Conv2d(width / 2, width / 2, 3, padding: 1, bias: false)), ("bn2", Ops.BatchNorm2d(width / 2)), ("act2", nn.ReLU()),
            ("conv3", Ops.Conv2d(width / 2, width, 3, padding: 1, bias: false)), ("bn3", Ops.BatchNorm2d(width)), ("act3", nn.ReLU()),
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
                blocks.Add(new ClipBottleneck(inplanes, planes, b == 0 && s > 0 ? 2 : 1));
                inplanes = planes * ClipBottleneck.Expansion;
            }
            _stages[s] = nn.Sequential(blocks.ToArray());
            register_module($"layer{s + 1}", _stages[s]);
        }
        int embed = width * 32;
        attnpool = new ClipAttentionPool(config.ImageSize / 32, embed, config.Heads, outputDim);
        register_module("attnpool", attnpool);
        using (no_grad()) Initialize();
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
internal sealed class ClipBottleneck : nn.Module<Tensor, Tensor>
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
    public ClipBottleneck(int inplanes, int planes, int stride) : base("Bottleneck")
    {
        // Registered one by one (not by RegisterComponents) so that the keys are exactly OpenCLIP's.
        _conv1 = Register("conv1", Ops.Conv2d(inplanes, planes, 1, bias: false));
        _bn1 = Register("bn1", Ops.BatchNorm2d(planes));
        _conv2 = Register("conv2", Ops.Conv2d(planes, planes, 3, padding: 1, bias: false));
        _bn2 = Register("bn2", Ops.BatchNorm2d(planes));
        _conv3 = Register("conv3", Ops.Conv2d(planes, planes * Expansion, 1, bias: false));
        _bn3 = Register("bn3", Ops.BatchNorm2d(planes * Expansion));
        if (stride > 1) _pool = nn.AvgPool2d(stride);
        if (stride > 1 || inplanes != planes * Expansion)
        {
            _shortcutPool = stride > 1 ? nn.AvgPool2d(stride) : null;
            _downsample = nn.Sequential(("0", Ops.Conv2d(inplanes, planes * Expansion, 1, bias: false)), ("1", Ops.BatchNorm2d(planes * Expansion)));
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
internal sealed class ClipAttentionPool : nn.Module<Tensor, Tensor>
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
    public ClipAttentionPool(int spatial, int embed, int heads, int outputDim) : base("AttentionPool2d")
    {
        _heads = heads;
        positional_embedding = new Parameter(randn((long)spatial * spatial + 1, embed).DivideInPlace(Math.Sqrt(embed)));
        k_proj = Ops.Linear(embed, embed);
        q_proj = Ops.Linear(embed, embed);
        v_proj = Ops.Linear(embed, embed);
        c_proj = Ops.Linear(embed, outputDim);
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

    internal void Initialize()
    {
        double std = Math.Pow(c_proj.in_features, -0.5);
        foreach (var linear in new[] { q_proj, k_proj, v_proj, c_proj }) nn.init.normal_(linear.weight, 0, std);
    }
}
