using Cnn.Backbones.Compute;
using Cnn.Backbones.Native;
using Cnn.Backbones.Onnx.Export;
using Cnn.Backbones.Weights.Catalog;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Models;

/// <summary>
/// A RegNet design, as torchvision's <c>BlockParams.from_init_params</c> arguments: widths follow <c>w_0 + w_a · i</c>, quantised in
/// log space with step <c>w_m</c> to multiples of 8.
/// </summary>
/// <param name="Name">Variant name.</param>
/// <param name="Depth">Total blocks.</param>
/// <param name="W0">Initial width.</param>
/// <param name="WA">Width slope.</param>
/// <param name="WM">Width multiplier between stages (log-space quantisation step).</param>
/// <param name="GroupWidth">Channels per group of the 3×3 convolutions.</param>
/// <param name="SeRatio">Squeeze-excitation ratio (of the block input width), or null for none (RegNetX).</param>
/// <param name="PretrainedConfig">Configuration of torchvision's IMAGENET1K_V1 weights.</param>
public sealed record RegNetArchitecture(string Name, int Depth, int W0, double WA, double WM, int GroupWidth, double? SeRatio, PretrainedConfig PretrainedConfig)
{
    /// <summary>
    /// Per-stage widths, depths and group widths, computed exactly as torchvision does (in float32 tensor arithmetic, then
    /// <c>_adjust_widths_groups_compatibilty</c> with bottleneck multiplier 1).
    /// </summary>
    public (int[] Widths, int[] Depths, int[] GroupWidths) Stages()
    {
        if (WA < 0 || W0 <= 0 || WM <= 1 || W0 % 8 != 0) throw new ArgumentException($"Invalid RegNet settings for {Name}.");
        const int quant = 8;
        int[] blockWidths;
        using (var scope = NewDisposeScope())
        {
            var widthsCont = Scalars.Arange(Depth, CPU).Times(WA).Plus(W0);
            var capacity = widthsCont.DividedBy(W0).log().DividedBy(Math.Log(WM)).round();
            var widths = pow(tensor((float)WM), capacity).Times(W0).DividedBy(quant).round().Times(quant).to_type(ScalarType.Int32);
            blockWidths = widths.data<int>().ToArray();
        }
        var splits = new List<bool>();
        for (int i = 0; i <= blockWidths.Length; i++)
        {
            int w = i < blockWidths.Length ? blockWidths[i] : 0, wp = i > 0 ? blockWidths[i - 1] : 0;
            splits.Add(w != wp);
        }
        var stageWidths = blockWidths.Where((w, i) => splits[i]).ToList();
        var splitIndices = splits.Select((t, i) => (t, i)).Where(x => x.t).Select(x => x.i).ToArray();
        var depths = splitIndices.Skip(1).Select((d, i) => d - splitIndices[i]).ToArray();
        var groups = stageWidths.Select(w => Math.Min(GroupWidth, w)).ToArray();
        var adjusted = stageWidths.Select((w, i) => Layers.MakeDivisible(w, groups[i])).ToArray();
        return (adjusted, depths, groups);
    }
}

/// <summary>
/// torchvision's RegNet (X and Y): <c>stem</c> (3×3/2 conv to 32, BN, ReLU), <c>trunk_output.block1..4</c> of residual bottleneck
/// blocks (<c>blockS-i</c>: <c>proj</c> when the shape changes, <c>f.a</c> 1×1, <c>f.b</c> grouped 3×3 (stride), <c>f.se</c>
/// for RegNetY, <c>f.c</c> 1×1), global average pool and <c>fc</c>. Feature stages as timm: stem /2, then /4, /8, /16, /32.
/// </summary>
public sealed class RegNet : Backbone
{
    private readonly Sequential stem;
    private readonly Sequential trunk_output;
    private readonly Sequential[] _stages;
    private nn.Module<Tensor, Tensor>? fc;

    private static readonly IReadOnlyList<StageGroup> Stages =
    [
        new("stem", ["stem."]),
        new("block1", ["trunk_output.block1."]),
        new("block2", ["trunk_output.block2."]),
        new("block3", ["trunk_output.block3."]),
        new("block4", ["trunk_output.block4."]),
        new("head", ["fc."]),
    ];

    /// <summary>Builds the network with torchvision's initialisation.</summary>
    /// <param name="architecture">Variant to build.</param>
    /// <param name="options">Creation options.</param>
    /// <param name="device">Device for the parameters; null for the default. The meta device builds without memory.</param>
    public RegNet(RegNetArchitecture architecture, ModelOptions? options = null, Device? device = null)
        : this(architecture, options ?? new ModelOptions(), device, architecture.Stages())
    {
    }

    private RegNet(RegNetArchitecture a, ModelOptions options, Device? device, (int[] Widths, int[] Depths, int[] GroupWidths) stages)
        : base(a.Name, options, stages.Widths[^1], FeatureInfoOf(stages.Widths), a.PretrainedConfig)
    {
        Architecture = a;
        var norm = BatchNormSettings.Default;
        stem = Layers.ConvNormAct(options.InChannels, 32, 3, 2, 1, () => nn.ReLU(), norm, device);
        int current = 32;
        _stages = new Sequential[stages.Widths.Length];
        for (int s = 0; s < _stages.Length; s++)
        {
            var blocks = new List<(string, nn.Module<Tensor, Tensor>)>();
            for (int i = 0; i < stages.Depths[s]; i++)
            {
                blocks.Add(($"block{s + 1}-{i}", new ResBottleneckBlock(i == 0 ? current : stages.Widths[s], stages.Widths[s], i == 0 ? 2 : 1,
                    stages.GroupWidths[s], a.SeRatio, norm, device)));
            }
            _stages[s] = nn.Sequential(blocks.ToArray());
            current = stages.Widths[s];
        }
        trunk_output = nn.Sequential(_stages.Select((st, s) => ($"block{s + 1}", (nn.Module<Tensor, Tensor>)st)).ToArray());
        register_module("stem", stem);
        register_module("trunk_output", trunk_output);
        if (!options.FeaturesOnly)
        {
            fc = CreateClassifier(options.NumClasses, device);
            register_module("fc", fc);
        }
        if (!Layers.IsMeta(device))
        {
            using var noGrad = no_grad();
            foreach (var (_, module) in named_modules())
            {
                switch (module)
                {
                    case PrecisionConv2d conv:
                        long fanOut = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels;
                        nn.init.normal_(conv.weight, 0, Math.Sqrt(2.0 / fanOut));
                        break;
                    case FoldableBatchNorm2d bn:
                        nn.init.ones_(bn.weight);
                        nn.init.zeros_(bn.bias);
                        break;
                    case PrecisionLinear linear:
                        nn.init.normal_(linear.weight, 0, 0.01);
                        nn.init.zeros_(linear.bias);
                        break;
                }
            }
        }
    }

    /// <summary>The architecture this model was built from.</summary>
    public RegNetArchitecture Architecture { get; }

    /// <inheritdoc />
    public override IReadOnlyList<StageGroup> StageGroups => Stages;

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? Classifier { get => fc; set => fc = value; }

    /// <inheritdoc />
    protected override Tensor ForwardStage(int index, Tensor x) => index switch
    {
        0 => stem.call(x),
        >= 1 and <= 4 => _stages[index - 1].call(x),
        _ => throw new ArgumentOutOfRangeException(nameof(index), index, "RegNet has feature stages 0..4."),
    };

    /// <inheritdoc />
    private protected override string ExportStage(int index, OnnxExportContext context, string x) =>
        context.Emit(index == 0 ? stem : _stages[index - 1], x);

    private static IReadOnlyList<FeatureInfo> FeatureInfoOf(int[] widths)
    {
        if (widths.Length != 4) throw new ArgumentException($"A RegNet needs 4 stages; the design gives {widths.Length}.");
        return [new(32, 2, "stem"), .. widths.Select((w, i) => new FeatureInfo(w, 4 << i, $"trunk_output.block{i + 1}"))];
    }
}

/// <summary>torchvision's RegNet <c>ResBottleneckBlock</c>: <c>ReLU(proj(x) + f(x))</c>, <c>proj</c> only when the shape changes.</summary>
internal sealed class ResBottleneckBlock : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly Sequential? proj;
    private readonly Sequential f;
    private readonly ReLU activation;

    /// <summary>Creates the block (bottleneck multiplier 1).</summary>
    /// <param name="widthIn">Input channels.</param>
    /// <param name="widthOut">Output channels.</param>
    /// <param name="stride">Stride of the 3×3 convolution and the projection.</param>
    /// <param name="groupWidth">Channels per group.</param>
    /// <param name="seRatio">Squeeze-excitation ratio of the input width, or null.</param>
    /// <param name="norm">BatchNorm settings.</param>
    /// <param name="device">Device for the parameters, or null.</param>
    public ResBottleneckBlock(int widthIn, int widthOut, int stride, int groupWidth, double? seRatio, BatchNormSettings norm, Device? device = null)
        : base(nameof(ResBottleneckBlock))
    {
        if (widthIn != widthOut || stride != 1) proj = Layers.ConvNormAct(widthIn, widthOut, 1, stride, 1, null, norm, device);
        int wb = widthOut;
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>
        {
            ("a", Layers.ConvNormAct(widthIn, wb, 1, 1, 1, () => nn.ReLU(), norm, device)),
            ("b", Layers.ConvNormAct(wb, wb, 3, stride, wb / groupWidth, () => nn.ReLU(), norm, device)),
        };
        if (seRatio is { } ratio && ratio > 0)
            layers.Add(("se", new SqueezeExcitation(wb, (int)Math.Round(ratio * widthIn, MidpointRounding.ToEven), nn.ReLU(), nn.Sigmoid(), device)));
        layers.Add(("c", Layers.ConvNormAct(wb, widthOut, 1, 1, 1, null, norm, device)));
        f = nn.Sequential(layers.ToArray());
        activation = nn.ReLU(inplace: true); // on the block's own sum
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var shortcut = proj is null ? x : proj.call(x);
        return f.call(x).PlusConsumed(shortcut).Then(activation).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public string ExportOnnx(OnnxExportContext context, string input)
    {
        var shortcut = proj is null ? input : context.Emit(proj, input);
        return context.Emit(activation, context.Add(shortcut, context.Emit(f, input)));
    }
}

/// <summary>Registers torchvision's RegNetY and RegNetX (400MF to 32GF) with their IMAGENET1K_V1 configurations.</summary>
public sealed partial class RegNetFamily : IModelFamily
{
    /// <summary>The registered names of the family's models, one constant each (the <c>CnnTrainer</c> factories name models by them).</summary>
    public static class Names
    {
        /// <summary><c>regnet_y_400mf</c>.</summary>
        public const string RegNetY400MF = "regnet_y_400mf";

        /// <summary><c>regnet_y_800mf</c>.</summary>
        public const string RegNetY800MF = "regnet_y_800mf";

        /// <summary><c>regnet_y_1_6gf</c>.</summary>
        public const string RegNetY1_6GF = "regnet_y_1_6gf";

        /// <summary><c>regnet_y_3_2gf</c>.</summary>
        public const string RegNetY3_2GF = "regnet_y_3_2gf";

        /// <summary><c>regnet_y_8gf</c>.</summary>
        public const string RegNetY8GF = "regnet_y_8gf";

        /// <summary><c>regnet_y_16gf</c>.</summary>
        public const string RegNetY16GF = "regnet_y_16gf";

        /// <summary><c>regnet_y_32gf</c>.</summary>
        public const string RegNetY32GF = "regnet_y_32gf";

        /// <summary><c>regnet_x_400mf</c>.</summary>
        public const string RegNetX400MF = "regnet_x_400mf";

        /// <summary><c>regnet_x_800mf</c>.</summary>
        public const string RegNetX800MF = "regnet_x_800mf";

        /// <summary><c>regnet_x_1_6gf</c>.</summary>
        public const string RegNetX1_6GF = "regnet_x_1_6gf";

        /// <summary><c>regnet_x_3_2gf</c>.</summary>
        public const string RegNetX3_2GF = "regnet_x_3_2gf";

        /// <summary><c>regnet_x_8gf</c>.</summary>
        public const string RegNetX8GF = "regnet_x_8gf";

        /// <summary><c>regnet_x_16gf</c>.</summary>
        public const string RegNetX16GF = "regnet_x_16gf";

        /// <summary><c>regnet_x_32gf</c>.</summary>
        public const string RegNetX32GF = "regnet_x_32gf";
    }

    /// <summary>Family name used in <see cref="ModelInfo.Family"/>.</summary>
    public const string Family = "regnet";

    /// <summary>Auto: what the family measured faster on a CPU with native bfloat16 (docs/performance.md).</summary>
    public AutoCompute AutoCompute => AutoCompute.BFloat16ChannelsLastInBFloat16;

    // Declared before Architectures: static initialisers run in order.
    private static PretrainedConfig Config { get; } =
        PretrainedConfig.TorchvisionImageNet(224, 256, "stem.0", "fc", "torchvision IMAGENET1K_V1");

    /// <summary>The designs, as torchvision's builders define them.</summary>
    public static IReadOnlyList<RegNetArchitecture> Architectures { get; } =
    [
        Y(RegNetFamily.Names.RegNetY400MF, 16, 48, 27.89, 2.09, 8),
        Y(RegNetFamily.Names.RegNetY800MF, 14, 56, 38.84, 2.4, 16),
        Y(RegNetFamily.Names.RegNetY1_6GF, 27, 48, 20.71, 2.65, 24),
        Y(RegNetFamily.Names.RegNetY3_2GF, 21, 80, 42.63, 2.66, 24),
        Y(RegNetFamily.Names.RegNetY8GF, 17, 192, 76.82, 2.19, 56),
        Y(RegNetFamily.Names.RegNetY16GF, 18, 200, 106.23, 2.48, 112),
        Y(RegNetFamily.Names.RegNetY32GF, 20, 232, 115.89, 2.53, 232),
        X(RegNetFamily.Names.RegNetX400MF, 22, 24, 24.48, 2.54, 16),
        X(RegNetFamily.Names.RegNetX800MF, 16, 56, 35.73, 2.28, 16),
        X(RegNetFamily.Names.RegNetX1_6GF, 18, 80, 34.01, 2.25, 24),
        X(RegNetFamily.Names.RegNetX3_2GF, 25, 88, 26.31, 2.25, 48),
        X(RegNetFamily.Names.RegNetX8GF, 23, 80, 49.56, 2.88, 120),
        X(RegNetFamily.Names.RegNetX16GF, 22, 216, 55.59, 2.1, 128),
        X(RegNetFamily.Names.RegNetX32GF, 23, 320, 69.86, 2.0, 168),
    ];

    /// <inheritdoc />
    public IEnumerable<ModelDefinition> Models =>
        Architectures.Select(a => new ModelDefinition(a.Name, Family, a.PretrainedConfig, (o, d) => new RegNet(a, o, d)).WithWeights(WeightsEnums));

    private static RegNetArchitecture Y(string name, int depth, int w0, double wa, double wm, int groupWidth) =>
        new(name, depth, w0, wa, wm, groupWidth, 0.25, Config);

    private static RegNetArchitecture X(string name, int depth, int w0, double wa, double wm, int groupWidth) =>
        new(name, depth, w0, wa, wm, groupWidth, null, Config);
}
