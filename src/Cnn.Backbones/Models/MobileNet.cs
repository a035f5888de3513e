using Cnn.Backbones.Compute;
using Cnn.Backbones.Onnx.Export;
using Cnn.Backbones.Weights.Catalog;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Models;

/// <summary>
/// torchvision's MobileNetV2 (width 1.0): <c>features.0</c> stem, 17 inverted residuals (<c>features.1..17</c>, ReLU6), the
/// 1×1 conv to 1280 (<c>features.18</c>), then <c>classifier.1</c> (<c>classifier.0</c> is the dropout, 0.2 by default).
/// Feature stages as timm: 16/2, 24/4, 32/8, 96/16, 320/32 (<c>features.1, 3, 6, 13, 17</c>).
/// </summary>
public sealed class MobileNetV2 : SequentialBackbone
{
    private const int LastChannel = 1280;
    private readonly ModuleContainer? classifier;
    private nn.Module<Tensor, Tensor>? _head;

    /// <summary>Builds the network with torchvision's initialisation.</summary>
    /// <param name="options">Creation options.</param>
    /// <param name="device">Device for the parameters; null for the default. The meta device builds without memory.</param>
    public MobileNetV2(ModelOptions? options = null, Device? device = null)
        : base(MobileNetFamily.Names.MobileNetV2, options ??= new ModelOptions(), Layout(options, device), LastChannel, MobileNetFamily.Config(MobileNetFamily.Names.MobileNetV2), "classifier.", 0.2)
    {
        if (!options.FeaturesOnly)
        {
            classifier = new ModuleContainer("Sequential");
            _head = CreateClassifier(options.NumClasses, device);
            classifier.Set("1", _head);
            register_module("classifier", classifier);
        }
        if (!Layers.IsMeta(device)) Layers.InitializeCnn(this, l => { nn.init.normal_(l.weight, 0, 0.01); nn.init.zeros_(l.bias); });
    }

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? Classifier { get => _head; set => _head = value; }

    private static FeatureLayout Layout(ModelOptions options, Device? device)
    {
        int[][] setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]];
        var norm = BatchNormSettings.Default;
        var layers = new List<nn.Module<Tensor, Tensor>> { Layers.ConvNormAct(options.InChannels, 32, 3, 2, 1, () => nn.ReLU6(), norm, device) };
        var channels = new List<int> { 32 };
        var reductions = new List<int> { 2 };
        int input = 32;
        foreach (var (t, c, n, s) in setting.Select(r => (r[0], r[1], r[2], r[3])))
        {
            for (int i = 0; i < n; i++)
            {
                int stride = i == 0 ? s : 1;
                int hidden = (int)Math.Round((double)input * t, MidpointRounding.ToEven);
                var branch = new List<nn.Module<Tensor, Tensor>>();
                if (t != 1) branch.Add(Layers.ConvNormAct(input, hidden, 1, 1, 1, () => nn.ReLU6(), norm, device));
                branch.Add(Layers.ConvNormAct(hidden, hidden, 3, stride, hidden, () => nn.ReLU6(), norm, device));
                branch.Add(Ops.Conv2d(hidden, c, 1, bias: false, device: device));
                branch.Add(Ops.BatchNorm2d(c, device: device));
                layers.Add(new InvertedResidual("conv", nn.Sequential(branch), stride == 1 && input == c));
                channels.Add(c);
                reductions.Add(reductions[^1] * stride);
                input = c;
            }
        }
        int body = layers.Count;
        layers.Add(Layers.ConvNormAct(input, LastChannel, 1, 1, 1, () => nn.ReLU6(), norm, device));
        channels.Add(LastChannel);
        reductions.Add(reductions[^1]);
        return new FeatureLayout(layers, channels, reductions, body);
    }
}

/// <summary>Size of a torchvision MobileNetV3.</summary>
public enum MobileNetV3Size
{
    /// <summary><c>mobilenet_v3_small</c>: 11 blocks, 576 → 1024 head.</summary>
    Small,

    /// <summary><c>mobilenet_v3_large</c>: 15 blocks, 960 → 1280 head.</summary>
    Large,
}

/// <summary>
/// torchvision's MobileNetV3 (hard-swish, squeeze-excitation with hard-sigmoid gate, BatchNorm eps 1e-3 / momentum 0.01):
/// <c>features</c> (stem, inverted residuals, 1×1 conv to 6× the last width), then <c>classifier.0</c> (Linear to 1024/1280)
/// + hard-swish, dropout (<c>classifier.2</c>, 0.2 by default) and <c>classifier.3</c>. <see cref="Backbone.ForwardHead"/> with
/// <c>preLogits</c> returns the 1024/1280-wide hidden vector (timm's <c>pre_logits</c>), the input of <c>classifier.3</c>.
/// Feature stages as timm: small 16/2, 16/4, 24/8, 48/16, 576/32; large 16/2, 24/4, 40/8, 112/16, 960/32.
/// </summary>
public sealed class MobileNetV3 : SequentialBackbone
{
    private readonly ModuleContainer? classifier;
    private readonly PrecisionLinear? _hidden;
    private readonly Hardswish _hiddenActivation = nn.Hardswish();
    private nn.Module<Tensor, Tensor>? _head;

    /// <summary>Builds the network with torchvision's initialisation.</summary>
    /// <param name="size">Small or large.</param>
    /// <param name="options">Creation options.</param>
    /// <param name="device">Device for the parameters; null for the default. The meta device builds without memory.</param>
    public MobileNetV3(MobileNetV3Size size, ModelOptions? options = null, Device? device = null)
        : base(NameOf(size), options ??= new ModelOptions(), Layout(size, options, device), HiddenWidth(size), MobileNetFamily.Config(NameOf(size)), "classifier.", 0.2)
    {
        Size = size;
        if (!options.FeaturesOnly)
        {
            int lastConv = FeatureInfo[^1].NumChannels;
            classifier = new ModuleContainer("Sequential");
            _hidden = Ops.Linear(lastConv, HiddenWidth(size), device: device);
            classifier.Set("0", _hidden);
            classifier.Set("1", _hiddenActivation);
            _head = CreateClassifier(options.NumClasses, device);
            classifier.Set("3", _head);
            register_module("classifier", classifier);
        }
        if (!Layers.IsMeta(device)) Layers.InitializeCnn(this, l => { nn.init.normal_(l.weight, 0, 0.01); nn.init.zeros_(l.bias); });
    }

    /// <summary>Small or large.</summary>
    public MobileNetV3Size Size { get; }

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? Classifier { get => _head; set => _head = value; }

    /// <summary>Average pool, then <c>classifier.0</c> and hard-swish: the hidden vector the final classifier reads.</summary>
    /// <param name="x">The last feature map.</param>
    protected override Tensor ForwardPool(Tensor x)
    {
        using var scope = NewDisposeScope();
        var pooled = nn.functional.adaptive_avg_pool2d(x, [1, 1]).flatten(1);
        return _hiddenActivation.call(_hidden!.call(pooled)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    private protected override string ExportPool(OnnxExportContext context, string features) =>
        context.EmitAll(base.ExportPool(context, features), [_hidden!, _hiddenActivation]);

    private static string NameOf(MobileNetV3Size size) => size == MobileNetV3Size.Small ? MobileNetFamily.Names.MobileNetV3Small : MobileNetFamily.Names.MobileNetV3Large;

    private static int HiddenWidth(MobileNetV3Size size) => size == MobileNetV3Size.Small ? 1024 : 1280;

    private static FeatureLayout Layout(MobileNetV3Size size, ModelOptions options, Device? device)
    {
        // input, kernel, expanded, output, SE, hard-swish, stride (torchvision's _mobilenet_v3_conf, width 1.0, no dilation)
        (int In, int K, int Exp, int Out, bool Se, bool Hs, int S)[] setting = size == MobileNetV3Size.Large
            ?
            [
                (16, 3, 16, 16, false, false, 1), (16, 3, 64, 24, false, false, 2), (24, 3, 72, 24, false, false, 1),
                (24, 5, 72, 40, true, false, 2), (40, 5, 120, 40, true, false, 1), (40, 5, 120, 40, true, false, 1),
                (40, 3, 240, 80, false, true, 2), (80, 3, 200, 80, false, true, 1), (80, 3, 184, 80, false, true, 1),
                (80, 3, 184, 80, false, true, 1), (80, 3, 480, 112, true, true, 1), (112, 3, 672, 112, true, true, 1),
                (112, 5, 672, 160, true, true, 2), (160, 5, 960, 160, true, true, 1), (160, 5, 960, 160, true, true, 1),
            ]
            :
            [
                (16, 3, 16, 16, true, false, 2), (16, 3, 72, 24, false, false, 2), (24, 3, 88, 24, false, false, 1),
                (24, 5, 96, 40, true, true, 2), (40, 5, 240, 40, true, true, 1), (40, 5, 240, 40, true, true, 1),
                (40, 5, 120, 48, true, true, 1), (48, 5, 144, 48, true, true, 1), (48, 5, 288, 96, true, true, 2),
                (96, 5, 576, 96, true, true, 1), (96, 5, 576, 96, true, true, 1),
            ];
        var norm = new BatchNormSettings(1e-3, 0.01);
        int stem = setting[0].In;
        var layers = new List<nn.Module<Tensor, Tensor>> { Layers.ConvNormAct(options.InChannels, stem, 3, 2, 1, () => nn.Hardswish(), norm, device) };
        var channels = new List<int> { stem };
        var reductions = new List<int> { 2 };
        foreach (var c in setting)
        {
            Func<nn.Module<Tensor, Tensor>> act = c.Hs ? () => nn.Hardswish() : () => nn.ReLU();
            var branch = new List<nn.Module<Tensor, Tensor>>();
            if (c.Exp != c.In) branch.Add(Layers.ConvNormAct(c.In, c.Exp, 1, 1, 1, act, norm, device));
            branch.Add(Layers.ConvNormAct(c.Exp, c.Exp, c.K, c.S, c.Exp, act, norm, device));
            if (c.Se) branch.Add(new SqueezeExcitation(c.Exp, Layers.MakeDivisible(c.Exp / 4, 8), nn.ReLU(), nn.Hardsigmoid(), device));
            branch.Add(Layers.ConvNormAct(c.Exp, c.Out, 1, 1, 1, null, norm, device));
            layers.Add(new InvertedResidual("block", nn.Sequential(branch), c.S == 1 && c.In == c.Out));
            channels.Add(c.Out);
            reductions.Add(reductions[^1] * c.S);
        }
        int lastConv = 6 * setting[^1].Out;
        layers.Add(Layers.ConvNormAct(setting[^1].Out, lastConv, 1, 1, 1, () => nn.Hardswish(), norm, device));
        channels.Add(lastConv);
        reductions.Add(reductions[^1]);
        return new FeatureLayout(layers, channels, reductions, layers.Count);
    }
}

/// <summary>Registers torchvision's MobileNetV2 and MobileNetV3 (small, large) with their IMAGENET1K_V1 configurations.</summary>
public sealed partial class MobileNetFamily : IModelFamily
{
    /// <summary>The registered names of the family's models, one constant each (the <c>CnnTrainer</c> factories name models by them).</summary>
    public static class Names
    {
        /// <summary><c>mobilenet_v2</c>.</summary>
        public const string MobileNetV2 = "mobilenet_v2";

        /// <summary><c>mobilenet_v3_small</c>.</summary>
        public const string MobileNetV3Small = "mobilenet_v3_small";

        /// <summary><c>mobilenet_v3_large</c>.</summary>
        public const string MobileNetV3Large = "mobilenet_v3_large";
    }

    /// <summary>Family name used in <see cref="ModelInfo.Family"/>.</summary>
    public const string Family = "mobilenet";

    /// <summary>Auto: what the family measured faster on a CPU with native bfloat16 (docs/performance.md).</summary>
    public AutoCompute AutoCompute => AutoCompute.BFloat16AndChannelsLast;

    /// <summary>torchvision IMAGENET1K_V1: resize 256, crop 224, bilinear, ImageNet mean/std.</summary>
    /// <param name="name">Model name.</param>
    public static PretrainedConfig Config(string name) =>
        PretrainedConfig.TorchvisionImageNet(224, 256, "features.0.0", name == MobileNetFamily.Names.MobileNetV2 ? "classifier.1" : "classifier.3", "torchvision IMAGENET1K_V1");

    /// <inheritdoc />
    public IEnumerable<ModelDefinition> Models =>
    [
        new ModelDefinition(MobileNetFamily.Names.MobileNetV2, Family, Config(MobileNetFamily.Names.MobileNetV2), (o, d) => new MobileNetV2(o, d)).WithWeights(WeightsEnums),
        new ModelDefinition(MobileNetFamily.Names.MobileNetV3Small, Family, Config(MobileNetFamily.Names.MobileNetV3Small), (o, d) => new MobileNetV3(MobileNetV3Size.Small, o, d)).WithWeights(WeightsEnums),
        new ModelDefinition(MobileNetFamily.Names.MobileNetV3Large, Family, Config(MobileNetFamily.Names.MobileNetV3Large), (o, d) => new MobileNetV3(MobileNetV3Size.Large, o, d)).WithWeights(WeightsEnums),
    ];
}
