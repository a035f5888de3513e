using Cnn.Backbones.Compute;
using Cnn.Backbones.Native;
using Cnn.Backbones.Onnx.Export;
using Cnn.Backbones.Weights.Catalog;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Models;

/// <summary>Residual block type of a ResNet.</summary>
public enum ResNetBlock
{
    /// <summary>Two 3×3 convolutions (ResNet-18/34), expansion 1.</summary>
    Basic,

    /// <summary>1×1 → 3×3 (strided, grouped) → 1×1 convolutions (ResNet-50 and deeper, ResNeXt, Wide ResNet), expansion 4.</summary>
    Bottleneck,
}

/// <summary>Attention layer inside each residual block (timm's <c>block_args=dict(attn_layer=...)</c>).</summary>
public enum ResNetAttention
{
    /// <summary>None (torchvision's ResNet).</summary>
    None,

    /// <summary>
    /// timm's squeeze-excitation (<c>attn_layer='se'</c>): <c>se.fc1</c>/<c>se.fc2</c> 1×1 convs with bias, reduction 1/16 rounded
    /// to a multiple of 8, ReLU and sigmoid gate, after the block's last BatchNorm.
    /// </summary>
    SqueezeExcitation,
}

/// <summary>Architecture of a ResNet variant, as the arguments of torchvision's <c>ResNet(block, layers, groups, width_per_group)</c>.</summary>
/// <param name="Name">Variant name, e.g. <c>resnet50</c>.</param>
/// <param name="Block">Block type.</param>
/// <param name="Layers">Number of blocks in layer1..layer4.</param>
/// <param name="Groups">Groups of the 3×3 convolutions (ResNeXt cardinality).</param>
/// <param name="WidthPerGroup">Width per group (64 for plain ResNet, 128 for Wide ResNet-2, 4 or 8 for ResNeXt).</param>
/// <param name="PretrainedConfig">Configuration of the reference (torchvision IMAGENET1K_V1) weights.</param>
/// <param name="Attention">Attention layer in every block (SE-ResNet); none for torchvision's models.</param>
public sealed record ResNetArchitecture(
    string Name, ResNetBlock Block, IReadOnlyList<int> Layers, int Groups, int WidthPerGroup, PretrainedConfig PretrainedConfig,
    ResNetAttention Attention = ResNetAttention.None)
{
    /// <summary>Output channels of a block relative to its <c>planes</c>: 1 for basic, 4 for bottleneck blocks.</summary>
    public int Expansion => Block == ResNetBlock.Basic ? 1 : 4;

    /// <summary>This architecture with <see cref="ModelOptions.BlockCounts"/> as its <see cref="Layers"/> when set, else itself.</summary>
    /// <param name="options">Creation options.</param>
    public ResNetArchitecture WithBlockCounts(ModelOptions options) =>
        options.BlockCounts is { } counts ? this with { Layers = counts.ToArray() } : this;
}

/// <summary>
/// torchvision's ResNet (v1.5: bottleneck stride on the 3×3 conv), also ResNeXt and Wide ResNet, with timm-style hooks.
/// State-dict keys, order and shapes equal torchvision 0.14's: <c>conv1, bn1, layer1..layer4, fc</c>, blocks
/// <c>layerK.i.conv1/bn1/conv2/bn2[/conv3/bn3][/downsample.0/.1]</c>.
/// </summary>
/// <remarks>The stem activation is named <c>act1</c> (timm's name, used by <see cref="Backbone.FeatureInfo"/>); torchvision calls it
/// <c>relu</c>. It has no parameters, so checkpoints are unaffected.</remarks>
public sealed class ResNet : Backbone
{
    private readonly PrecisionConv2d conv1;
    private readonly FoldableBatchNorm2d bn1;
    private readonly ReLU act1;
    private readonly MaxPool2d maxpool;
    private readonly Sequential layer1;
    private readonly Sequential layer2;
    private readonly Sequential layer3;
    private readonly Sequential layer4;
    private nn.Module<Tensor, Tensor>? fc;

    private static readonly IReadOnlyList<StageGroup> Stages =
    [
        new("stem", ["conv1.", "bn1."]),
        new("layer1", ["layer1."]),
        new("layer2", ["layer2."]),
        new("layer3", ["layer3."]),
        new("layer4", ["layer4."]),
        new("head", ["fc."]),
    ];

    /// <summary>Builds the network with torchvision's initialisation (Kaiming-normal fan-out convolutions, BatchNorm 1/0).</summary>
    /// <param name="architecture">Variant to build.</param>
    /// <param name="options">Creation options (classes, input channels, features-only, drop rate, zero-init residual).</param>
    /// <param name="device">Device for the parameters; null for the default (CPU). The meta device builds without memory.</param>
    public ResNet(ResNetArchitecture architecture, ModelOptions? options = null, Device? device = null)
        : base(architecture.Name, options ??= new ModelOptions(), 512 * architecture.Expansion, FeatureInfoOf(architecture), architecture.PretrainedConfig)
    {
        if (architecture.Layers.Count != 4 || architecture.Layers.Any(n => n < 1))
            throw new ArgumentException($"A ResNet needs 4 stages of at least one block each (ModelOptions.BlockCounts); got [{string.Join(", ", architecture.Layers)}].", nameof(architecture));
        if (architecture.Block == ResNetBlock.Basic && (architecture.Groups != 1 || architecture.WidthPerGroup != 64))
            throw new ArgumentException("BasicBlock only supports groups=1 and width_per_group=64.", nameof(architecture));
        Architecture = architecture;

        conv1 = Ops.Conv2d(options.InChannels, 64, 7, stride: 2, padding: 3, bias: false, device: device);
        bn1 = Ops.BatchNorm2d(64, device: device);
        act1 = nn.ReLU();
        maxpool = nn.MaxPool2d(3, stride: 2, padding: 1);
        var builder = new LayerBuilder(architecture, device);
        layer1 = builder.MakeLayer(64, architecture.Layers[0], stride: 1);
        layer2 = builder.MakeLayer(128, architecture.Layers[1], stride: 2);
        layer3 = builder.MakeLayer(256, architecture.Layers[2], stride: 2);
        layer4 = builder.MakeLayer(512, architecture.Layers[3], stride: 2);
        if (!options.FeaturesOnly) fc = CreateClassifier(options.NumClasses, device);
        RegisterComponents();
        InitializeWeights(options.ZeroInitResidual);
    }

    /// <summary>The architecture this model was built from.</summary>
    public ResNetArchitecture Architecture { get; }

    /// <inheritdoc />
    public override IReadOnlyList<StageGroup> StageGroups => Stages;

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? Classifier { get => fc; set => fc = value; }

    /// <inheritdoc />
    protected override Tensor ForwardStage(int index, Tensor x)
    {
        switch (index)
        {
            case 0:
                using (var scope = NewDisposeScope())
                    return conv1.call(x).Then(bn1).Then(act1).MoveToOuterDisposeScope();
            case 1:
                using (var pooled = maxpool.call(x))
                    return layer1.call(pooled);
            case 2: return layer2.call(x);
            case 3: return layer3.call(x);
            case 4: return layer4.call(x);
            default: throw new ArgumentOutOfRangeException(nameof(index), index, "ResNet has feature stages 0..4.");
        }
    }

    /// <inheritdoc />
    private protected override string ExportStage(int index, OnnxExportContext context, string x) => index switch
    {
        0 => context.EmitAll(x, [conv1, bn1, act1]),
        1 => context.EmitAll(x, [maxpool, layer1]),
        2 => context.Emit(layer2, x),
        3 => context.Emit(layer3, x),
        4 => context.Emit(layer4, x),
        _ => throw new ArgumentOutOfRangeException(nameof(index), index, "ResNet has feature stages 0..4."),
    };

    private static IReadOnlyList<FeatureInfo> FeatureInfoOf(ResNetArchitecture a) =>
    [
        new(64, 2, "act1"),
        new(64 * a.Expansion, 4, "layer1"),
        new(128 * a.Expansion, 8, "layer2"),
        new(256 * a.Expansion, 16, "layer3"),
        new(512 * a.Expansion, 32, "layer4"),
    ];

    private void InitializeWeights(bool zeroInitResidual)
    {
        using var noGrad = no_grad();
        foreach (var (_, module) in named_modules())
        {
            switch (module)
            {
                case PrecisionConv2d conv:
                    nn.init.kaiming_normal_(conv.weight, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);
                    break;
                case FoldableBatchNorm2d bn:
                    nn.init.constant_(bn.weight, Scalars.One);
                    nn.init.constant_(bn.bias, Scalars.Zero);
                    break;
            }
        }
        if (!zeroInitResidual) return;
        foreach (var (_, module) in named_modules())
        {
            if (module is ResNetBlockModule block) nn.init.constant_(block.LastNorm.weight, Scalars.Zero);
        }
    }

    /// <summary>torchvision's <c>_make_layer</c>: tracks the running input width across layers.</summary>
    private sealed class LayerBuilder(ResNetArchitecture architecture, Device? device)
    {
        private int _inplanes = 64;

        public Sequential MakeLayer(int planes, int blocks, int stride)
        {
            int outChannels = planes * architecture.Expansion;
            Sequential? downsample = stride != 1 || _inplanes != outChannels
                ? nn.Sequential(Conv1x1(_inplanes, outChannels, stride, device), Ops.BatchNorm2d(outChannels, device: device))
                : null;
            var layers = new List<nn.Module<Tensor, Tensor>> { CreateBlock(_inplanes, planes, stride, downsample) };
            _inplanes = outChannels;
            for (int i = 1; i < blocks; i++) layers.Add(CreateBlock(_inplanes, planes, 1, null));
            return nn.Sequential(layers);
        }

        private ResNetBlockModule CreateBlock(int inplanes, int planes, int stride, Sequential? downsample) =>
            architecture.Block == ResNetBlock.Basic
                ? new BasicBlock(inplanes, planes, stride, downsample, device, Attention(planes))
                : new Bottleneck(inplanes, planes, stride, downsample, architecture.Groups, architecture.WidthPerGroup, device, Attention(planes * 4));

        private nn.Module<Tensor, Tensor>? Attention(int channels) => architecture.Attention switch
        {
            ResNetAttention.None => null,
            // timm's SEModule: rd_channels = make_divisible(channels / 16, 8, round_limit=0.)
            _ => new SqueezeExcitation(channels, Math.Max(8, (int)(channels / 16.0 + 4) / 8 * 8), nn.ReLU(), nn.Sigmoid(), device),
        };
    }

    internal static PrecisionConv2d Conv3x3(int inPlanes, int outPlanes, int stride, int groups, Device? device) =>
        Ops.Conv2d(inPlanes, outPlanes, 3, stride: stride, padding: 1, groups: groups, bias: false, device: device);

    internal static PrecisionConv2d Conv1x1(int inPlanes, int outPlanes, int stride, Device? device) =>
        Ops.Conv2d(inPlanes, outPlanes, 1, stride: stride, bias: false, device: device);
}

/// <summary>A residual block; <see cref="LastNorm"/> is the BatchNorm zeroed by <c>zero_init_residual</c>.</summary>
internal abstract class ResNetBlockModule : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    /// <summary>Creates the block module.</summary>
    /// <param name="name">Module type name.</param>
    protected ResNetBlockModule(string name) : base(name) { }

    /// <summary>The last BatchNorm of the residual branch.</summary>
    public abstract FoldableBatchNorm2d LastNorm { get; }

    /// <inheritdoc />
    public string ExportOnnx(OnnxExportContext context, string input)
    {
        ArgumentNullException.ThrowIfNull(context);
        var (branch, downsample, relu) = ExportParts;
        var identity = downsample is null ? input : context.Emit(downsample, input);
        return context.Relu(context.Add(context.EmitAll(input, branch), identity));
    }

    /// <summary>The residual branch in order (ReLUs included, the final one excluded), the projection of the identity, and the block's ReLU.</summary>
    protected abstract (IReadOnlyList<nn.Module> Branch, nn.Module? Downsample, nn.Module Relu) ExportParts { get; }
}

/// <summary>torchvision's <c>BasicBlock</c>: conv3x3(stride) → BN → ReLU → conv3x3 → BN, plus the (downsampled) identity, → ReLU.</summary>
internal sealed class BasicBlock : ResNetBlockModule
{
    private readonly PrecisionConv2d conv1;
    private readonly FoldableBatchNorm2d bn1;
    private readonly ReLU relu;
    private readonly PrecisionConv2d conv2;
    private readonly FoldableBatchNorm2d bn2;
    private readonly nn.Module<Tensor, Tensor>? se;
    private readonly Sequential? downsample;

    /// <summary>Creates the block.</summary>
    /// <param name="inplanes">Input channels.</param>
    /// <param name="planes">Output channels.</param>
    /// <param name="stride">Stride of the first convolution.</param>
    /// <param name="downsample">Projection of the identity (<c>conv1x1</c> + BN) when shape changes, else null.</param>
    /// <param name="device">Device for the parameters, or null.</param>
    /// <param name="attention">Attention applied after <c>bn2</c> (registered as <c>se</c>), or null.</param>
    public BasicBlock(int inplanes, int planes, int stride = 1, Sequential? downsample = null, Device? device = null, nn.Module<Tensor, Tensor>? attention = null)
        : base(nameof(BasicBlock))
    {
        conv1 = ResNet.Conv3x3(inplanes, planes, stride, 1, device);
        bn1 = Ops.BatchNorm2d(planes, device: device);
        relu = nn.ReLU(inplace: true); // on the block's own BatchNorm outputs and sum, as torchvision's
        conv2 = ResNet.Conv3x3(planes, planes, 1, 1, device);
        bn2 = Ops.BatchNorm2d(planes, device: device);
        se = attention;
        this.downsample = downsample;
        RegisterComponents();
    }

    /// <inheritdoc />
    public override FoldableBatchNorm2d LastNorm => bn2;

    /// <inheritdoc />
    protected override (IReadOnlyList<nn.Module> Branch, nn.Module? Downsample, nn.Module Relu) ExportParts =>
        ([conv1, bn1, relu, conv2, bn2, .. se is null ? Array.Empty<nn.Module>() : [se]], downsample, relu);

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var @out = conv1.call(x).Then(bn1).Then(relu).Then(conv2).Then(bn2);
        if (se is not null) @out = @out.Then(se);
        var identity = downsample is null ? x : downsample.call(x);
        return @out.PlusConsumed(identity).Then(relu).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// torchvision's <c>Bottleneck</c> (ResNet v1.5): conv1x1 → BN → ReLU → conv3x3(stride, groups) → BN → ReLU → conv1x1 → BN,
/// plus the (downsampled) identity, → ReLU. Inner width is <c>int(planes · width_per_group / 64) · groups</c>.
/// </summary>
internal sealed class Bottleneck : ResNetBlockModule
{
    private readonly PrecisionConv2d conv1;
    private readonly FoldableBatchNorm2d bn1;
    private readonly PrecisionConv2d conv2;
    private readonly FoldableBatchNorm2d bn2;
    private readonly PrecisionConv2d conv3;
    private readonly FoldableBatchNorm2d bn3;
    private readonly nn.Module<Tensor, Tensor>? se;
    private readonly ReLU relu;
    private readonly Sequential? downsample;

    /// <summary>Creates the block.</summary>
    /// <param name="inplanes">Input channels.</param>
    /// <param name="planes">Base channels; the output has <c>4 · planes</c>.</param>
    /// <param name="stride">Stride of the 3×3 convolution.</param>
    /// <param name="downsample">Projection of the identity (<c>conv1x1</c> + BN) when shape changes, else null.</param>
    /// <param name="groups">Groups of the 3×3 convolution.</param>
    /// <param name="baseWidth">Width per group.</param>
    /// <param name="device">Device for the parameters, or null.</param>
    /// <param name="attention">Attention applied after <c>bn3</c> (registered as <c>se</c>, timm's layout), or null.</param>
    public Bottleneck(int inplanes, int planes, int stride = 1, Sequential? downsample = null, int groups = 1, int baseWidth = 64, Device? device = null,
        nn.Module<Tensor, Tensor>? attention = null)
        : base(nameof(Bottleneck))
    {
        int width = (int)(planes * (baseWidth / 64.0)) * groups;
        conv1 = ResNet.Conv1x1(inplanes, width, 1, device);
        bn1 = Ops.BatchNorm2d(width, device: device);
        conv2 = ResNet.Conv3x3(width, width, stride, groups, device);
        bn2 = Ops.BatchNorm2d(width, device: device);
        conv3 = ResNet.Conv1x1(width, planes * 4, 1, device);
        bn3 = Ops.BatchNorm2d(planes * 4, device: device);
        se = attention;
        relu = nn.ReLU(inplace: true); // on the block's own BatchNorm outputs and sum, as torchvision's
        this.downsample = downsample;
        RegisterComponents();
    }

    /// <inheritdoc />
    public override FoldableBatchNorm2d LastNorm => bn3;

    /// <inheritdoc />
    protected override (IReadOnlyList<nn.Module> Branch, nn.Module? Downsample, nn.Module Relu) ExportParts =>
        ([conv1, bn1, relu, conv2, bn2, relu, conv3, bn3, .. se is null ? Array.Empty<nn.Module>() : [se]], downsample, relu);

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var @out = conv1.call(x).Then(bn1).Then(relu).Then(conv2).Then(bn2).Then(relu).Then(conv3).Then(bn3);
        if (se is not null) @out = @out.Then(se);
        var identity = downsample is null ? x : downsample.call(x);
        return @out.PlusConsumed(identity).Then(relu).MoveToOuterDisposeScope();
    }
}

/// <summary>Registers torchvision's ResNet, ResNeXt and Wide ResNet variants with their IMAGENET1K_V1 configurations.</summary>
public sealed partial class ResNetFamily : IModelFamily
{
    /// <summary>The registered names of the family's models, one constant each (the <c>CnnTrainer</c> factories name models by them).</summary>
    public static class Names
    {
        /// <summary><c>resnet18</c>.</summary>
        public const string ResNet18 = "resnet18";

        /// <summary><c>resnet34</c>.</summary>
        public const string ResNet34 = "resnet34";

        /// <summary><c>resnet50</c>.</summary>
        public const string ResNet50 = "resnet50";

        /// <summary><c>resnet101</c>.</summary>
        public const string ResNet101 = "resnet101";

        /// <summary><c>resnet152</c>.</summary>
        public const string ResNet152 = "resnet152";

        /// <summary><c>resnext50_32x4d</c>.</summary>
        public const string ResNeXt50_32x4d = "resnext50_32x4d";

        /// <summary><c>resnext101_32x8d</c>.</summary>
        public const string ResNeXt101_32x8d = "resnext101_32x8d";

        /// <summary><c>resnext101_64x4d</c>.</summary>
        public const string ResNeXt101_64x4d = "resnext101_64x4d";

        /// <summary><c>wide_resnet50_2</c>.</summary>
        public const string WideResNet50_2 = "wide_resnet50_2";

        /// <summary><c>wide_resnet101_2</c>.</summary>
        public const string WideResNet101_2 = "wide_resnet101_2";
    }

    /// <summary>Family name used in <see cref="ModelInfo.Family"/>.</summary>
    public const string Family = "resnet";

    /// <summary>Auto: what the family measured faster on a CPU with native bfloat16 (docs/performance.md).</summary>
    public AutoCompute AutoCompute => AutoCompute.BFloat16AndChannelsLast;

    /// <summary>The architectures, by name, as torchvision defines them.</summary>
    public static IReadOnlyList<ResNetArchitecture> Architectures { get; } =
    [
        Define(ResNetFamily.Names.ResNet18, ResNetBlock.Basic, [2, 2, 2, 2]),
        Define(ResNetFamily.Names.ResNet34, ResNetBlock.Basic, [3, 4, 6, 3]),
        Define(ResNetFamily.Names.ResNet50, ResNetBlock.Bottleneck, [3, 4, 6, 3]),
        Define(ResNetFamily.Names.ResNet101, ResNetBlock.Bottleneck, [3, 4, 23, 3]),
        Define(ResNetFamily.Names.ResNet152, ResNetBlock.Bottleneck, [3, 8, 36, 3]),
        Define(ResNetFamily.Names.ResNeXt50_32x4d, ResNetBlock.Bottleneck, [3, 4, 6, 3], groups: 32, widthPerGroup: 4),
        Define(ResNetFamily.Names.ResNeXt101_32x8d, ResNetBlock.Bottleneck, [3, 4, 23, 3], groups: 32, widthPerGroup: 8),
        // torchvision's only weights for this variant were trained with the new recipe: resize 232, crop 224.
        Define(ResNetFamily.Names.ResNeXt101_64x4d, ResNetBlock.Bottleneck, [3, 4, 23, 3], groups: 64, widthPerGroup: 4, resizeSize: 232),
        Define(ResNetFamily.Names.WideResNet50_2, ResNetBlock.Bottleneck, [3, 4, 6, 3], widthPerGroup: 128),
        Define(ResNetFamily.Names.WideResNet101_2, ResNetBlock.Bottleneck, [3, 4, 23, 3], widthPerGroup: 128),
    ];

    /// <inheritdoc />
    public IEnumerable<ModelDefinition> Models =>
        Architectures.Select(a => Register(a, Family).WithWeights(WeightsEnums));

    /// <summary>
    /// The registration of a ResNet-layout architecture (also SE-ResNet's): a CNN whose blocks per stage
    /// <see cref="ModelOptions.BlockCounts"/> may replace and whose residual branches may end in zero-initialised BatchNorms
    /// (<see cref="ModelOptions.ZeroInitResidual"/>).
    /// </summary>
    /// <param name="architecture">The architecture.</param>
    /// <param name="family">Family name.</param>
    internal static ModelDefinition Register(ResNetArchitecture architecture, string family) =>
        new(architecture.Name, family, architecture.PretrainedConfig, (options, device) => new ResNet(architecture.WithBlockCounts(options), options, device))
        {
            Capabilities = ModelCapabilities.Cnn with { BlockCounts = true, ZeroInitResidual = true },
        };

    private static ResNetArchitecture Define(string name, ResNetBlock block, int[] layers, int groups = 1, int widthPerGroup = 64, int resizeSize = 256) =>
        new(name, block, layers, groups, widthPerGroup,
            PretrainedConfig.TorchvisionImageNet(cropSize: 224, resizeSize: resizeSize, firstConv: "conv1", classifier: "fc", tag: "torchvision IMAGENET1K_V1"));
}
