using Cnn.Backbones.Compute;
using Cnn.Backbones.Native;
using Cnn.Backbones.Onnx.Export;
using Cnn.Backbones.Weights.Catalog;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Models;

/// <summary>Architecture of a ConvNeXt variant, as torchvision's <c>convnext_*</c> builders define it.</summary>
/// <param name="Name">Variant name.</param>
/// <param name="Widths">Channels of the four stages.</param>
/// <param name="Depths">Blocks of the four stages.</param>
/// <param name="DropPathRate">torchvision's default <c>stochastic_depth_prob</c> (rate of the last block).</param>
/// <param name="PretrainedConfig">Configuration of torchvision's IMAGENET1K_V1 weights.</param>
public sealed record ConvNeXtArchitecture(string Name, IReadOnlyList<int> Widths, IReadOnlyList<int> Depths, double DropPathRate, PretrainedConfig PretrainedConfig);

/// <summary>
/// torchvision's ConvNeXt: <c>features.0</c> stem (4×4/4 conv with bias + LayerNorm2d), stages <c>features.1, 3, 5, 7</c> of
/// <see cref="CNBlock"/>s with downsampling layers (LayerNorm2d + 2×2/2 conv) <c>features.2, 4, 6</c> between them, then global
/// average pool, <c>classifier.0</c> (LayerNorm2d), flatten and <c>classifier.2</c> (Linear). LayerNorm eps 1e-6, layer scale
/// 1e-6, stochastic depth rising linearly to the variant's rate (active only in training). Feature stages as timm:
/// C/4, 2C/8, 4C/16, 8C/32. Pre-logits are the normalised pooled vector.
/// </summary>
public sealed class ConvNeXt : SequentialBackbone
{
    private const double Eps = 1e-6;
    private readonly ModuleContainer? classifier;
    private readonly LayerNorm2d? _norm;
    private nn.Module<Tensor, Tensor>? _head;

    /// <summary>Builds the network with torchvision's initialisation (truncated-normal 0.02 weights, zero biases).</summary>
    /// <param name="architecture">Variant to build.</param>
    /// <param name="options">Creation options (<see cref="ModelOptions.DropPathRate"/> overrides the stochastic-depth rate).</param>
    /// <param name="device">Device for the parameters; null for the default. The meta device builds without memory.</param>
    public ConvNeXt(ConvNeXtArchitecture architecture, ModelOptions? options = null, Device? device = null)
        : base(architecture.Name, options ??= new ModelOptions(), Layout(architecture, options, device), architecture.Widths[^1],
            architecture.PretrainedConfig, "classifier.", 0)
    {
        Architecture = architecture;
        if (!options.FeaturesOnly)
        {
            classifier = new ModuleContainer("Sequential");
            _norm = new LayerNorm2d(NumFeatures, Eps, device);
            classifier.Set("0", _norm);
            _head = CreateClassifier(options.NumClasses, device);
            classifier.Set("2", _head);
            register_module("classifier", classifier);
        }
        if (!Layers.IsMeta(device))
        {
            using var noGrad = no_grad();
            foreach (var (_, module) in named_modules())
            {
                if (module is PrecisionConv2d conv) Init(conv.weight, conv.bias);
                else if (module is PrecisionLinear linear) Init(linear.weight, linear.bias);
            }
        }
    }

    /// <summary>The architecture this model was built from.</summary>
    public ConvNeXtArchitecture Architecture { get; }

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? Classifier { get => _head; set => _head = value; }

    /// <summary>Average pool, then <c>classifier.0</c> (LayerNorm2d) and flatten.</summary>
    /// <param name="x">The last feature map.</param>
    protected override Tensor ForwardPool(Tensor x)
    {
        using var scope = NewDisposeScope();
        var pooled = nn.functional.adaptive_avg_pool2d(x, [1, 1]);
        return _norm!.call(pooled).flatten(1).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    private protected override string ExportPool(OnnxExportContext context, string features) =>
        context.Flatten(context.Emit(_norm!, context.GlobalAveragePool(features)));

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor> CreateClassifier(int numClasses, Device? device = null)
    {
        var head = base.CreateClassifier(numClasses, device);
        if (head is PrecisionLinear linear && !Layers.IsMeta(device))
        {
            using var noGrad = no_grad();
            Init(linear.weight, linear.bias);
        }
        return head;
    }

    private static void Init(Tensor weight, Tensor? bias)
    {
        Layers.TruncatedNormal(weight, mean: 0, std: 0.02, a: -2, b: 2);
        if (bias is not null) nn.init.zeros_(bias);
    }

    private static FeatureLayout Layout(ConvNeXtArchitecture a, ModelOptions options, Device? device)
    {
        var stem = nn.Sequential(Ops.Conv2d(options.InChannels, a.Widths[0], 4, stride: 4, bias: true, device: device), new LayerNorm2d(a.Widths[0], Eps, device));
        var layers = new List<nn.Module<Tensor, Tensor>> { stem };
        var channels = new List<int> { a.Widths[0] };
        var reductions = new List<int> { 4 };
        double dropPath = options.DropPathRate ?? a.DropPathRate;
        int total = a.Depths.Sum();
        int blockId = 0;
        for (int s = 0; s < a.Widths.Count; s++)
        {
            var blocks = new List<nn.Module<Tensor, Tensor>>();
            for (int i = 0; i < a.Depths[s]; i++)
            {
                blocks.Add(new CNBlock(a.Widths[s], 1e-6, dropPath * blockId / (total - 1.0), device));
                blockId++;
            }
            layers.Add(nn.Sequential(blocks));
            channels.Add(a.Widths[s]);
            reductions.Add(reductions[^1]);
            if (s + 1 < a.Widths.Count)
            {
                layers.Add(nn.Sequential(new LayerNorm2d(a.Widths[s], Eps, device), Ops.Conv2d(a.Widths[s], a.Widths[s + 1], 2, stride: 2, device: device)));
                channels.Add(a.Widths[s + 1]);
                reductions.Add(reductions[^1] * 2);
            }
        }
        return new FeatureLayout(layers, channels, reductions, layers.Count);
    }
}

/// <summary>
/// torchvision's ConvNeXt block: <c>x + StochasticDepth(layer_scale · block(x))</c> with <c>block</c> = 7×7 depthwise conv →
/// channels-last LayerNorm (eps 1e-6) → Linear(4C) → GELU → Linear(C).
/// </summary>
internal sealed class CNBlock : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly Parameter layer_scale;
    private readonly Sequential block;
    private readonly StochasticDepth stochastic_depth;

    /// <summary>Creates the block.</summary>
    /// <param name="dim">Channels.</param>
    /// <param name="layerScale">Initial layer scale.</param>
    /// <param name="dropPath">Stochastic-depth probability.</param>
    /// <param name="device">Device for the parameters, or null.</param>
    public CNBlock(int dim, double layerScale, double dropPath, Device? device = null) : base(nameof(CNBlock))
    {
        layer_scale = new Parameter(ones(dim, 1, 1, device: device).Times(layerScale));
        block = nn.Sequential(
            Ops.Conv2d(dim, dim, 7, padding: 3, groups: dim, bias: true, device: device),
            new Permute(0, 2, 3, 1),
            nn.LayerNorm(dim, eps: 1e-6, device: device),
            Ops.Linear(dim, 4 * dim, device: device),
            nn.GELU(),
            Ops.Linear(4 * dim, dim, device: device),
            new Permute(0, 3, 1, 2));
        stochastic_depth = new StochasticDepth(dropPath);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var branch = block.call(x);
        var result = (layer_scale * branch).Then(stochastic_depth);
        branch.Dispose();
        return result.PlusConsumed(x).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public string ExportOnnx(OnnxExportContext context, string input) =>
        context.Add(context.Mul(context.Parameter(this, "layer_scale", layer_scale), context.Emit(block, input)), input);
}

/// <summary>Registers torchvision's ConvNeXt tiny/small/base/large with their IMAGENET1K_V1 configurations.</summary>
public sealed partial class ConvNeXtFamily : IModelFamily
{
    /// <summary>The registered names of the family's models, one constant each (the <c>CnnTrainer</c> factories name models by them).</summary>
    public static class Names
    {
        /// <summary><c>convnext_tiny</c>.</summary>
        public const string ConvNeXtTiny = "convnext_tiny";

        /// <summary><c>convnext_small</c>.</summary>
        public const string ConvNeXtSmall = "convnext_small";

        /// <summary><c>convnext_base</c>.</summary>
        public const string ConvNeXtBase = "convnext_base";

        /// <summary><c>convnext_large</c>.</summary>
        public const string ConvNeXtLarge = "convnext_large";
    }

    /// <summary>Family name used in <see cref="ModelInfo.Family"/>.</summary>
    public const string Family = "convnext";

    /// <summary>Auto: what the family measured faster on a CPU with native bfloat16 (docs/performance.md).</summary>
    public AutoCompute AutoCompute => AutoCompute.BFloat16ChannelsLastInBFloat16;

    /// <summary>The architectures, as torchvision defines them (resize 236/230/232/232, crop 224, bilinear).</summary>
    public static IReadOnlyList<ConvNeXtArchitecture> Architectures { get; } =
    [
        new(ConvNeXtFamily.Names.ConvNeXtTiny, [96, 192, 384, 768], [3, 3, 9, 3], 0.1, Config(236)),
        new(ConvNeXtFamily.Names.ConvNeXtSmall, [96, 192, 384, 768], [3, 3, 27, 3], 0.4, Config(230)),
        new(ConvNeXtFamily.Names.ConvNeXtBase, [128, 256, 512, 1024], [3, 3, 27, 3], 0.5, Config(232)),
        new(ConvNeXtFamily.Names.ConvNeXtLarge, [192, 384, 768, 1536], [3, 3, 27, 3], 0.5, Config(232)),
    ];

    /// <inheritdoc />
    public IEnumerable<ModelDefinition> Models =>
        Architectures.Select(a => new ModelDefinition(a.Name, Family, a.PretrainedConfig, (o, d) => new ConvNeXt(a, o, d)).WithWeights(WeightsEnums));

    private static PretrainedConfig Config(int resize) =>
        PretrainedConfig.TorchvisionImageNet(224, resize, "features.0.0", "classifier.2", "torchvision IMAGENET1K_V1");
}
