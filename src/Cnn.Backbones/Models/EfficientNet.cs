using Cnn.Backbones.Weights.Catalog;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Models;

/// <summary>One stage of an EfficientNet, as torchvision's <c>MBConvConfig</c> / <c>FusedMBConvConfig</c> (before width/depth scaling).</summary>
/// <param name="Fused">FusedMBConv (EfficientNetV2's early stages) instead of MBConv.</param>
/// <param name="ExpandRatio">Expansion ratio.</param>
/// <param name="Kernel">Depthwise (or fused) kernel size.</param>
/// <param name="Stride">Stride of the first block.</param>
/// <param name="InChannels">Input channels.</param>
/// <param name="OutChannels">Output channels.</param>
/// <param name="Layers">Number of blocks.</param>
public sealed record EfficientNetStage(bool Fused, double ExpandRatio, int Kernel, int Stride, int InChannels, int OutChannels, int Layers);

/// <summary>Architecture of an EfficientNet variant, as torchvision's <c>efficientnet_*</c> builders define it.</summary>
/// <param name="Name">Variant name.</param>
/// <param name="Stages">Stages before scaling.</param>
/// <param name="WidthMult">Width multiplier (channels: <c>_make_divisible(c · width, 8)</c>).</param>
/// <param name="DepthMult">Depth multiplier (blocks: <c>ceil(n · depth)</c>).</param>
/// <param name="Dropout">Dropout before the classifier.</param>
/// <param name="LastChannel">Width of the final 1×1 conv, or null for 4 × the last stage's.</param>
/// <param name="Norm">BatchNorm settings.</param>
/// <param name="PretrainedConfig">Configuration of torchvision's IMAGENET1K_V1 weights.</param>
public sealed record EfficientNetArchitecture(
    string Name, IReadOnlyList<EfficientNetStage> Stages, double WidthMult, double DepthMult, double Dropout, int? LastChannel,
    BatchNormSettings Norm, PretrainedConfig PretrainedConfig)
{
    /// <summary>Stochastic-depth probability of the last block (torchvision's default <c>stochastic_depth_prob</c>).</summary>
    public const double DefaultDropPathRate = 0.2;

    /// <summary>Channels after width scaling.</summary>
    /// <param name="channels">Unscaled channels.</param>
    public int Scale(int channels) => Layers.MakeDivisible(channels * WidthMult, 8);

    /// <summary>Blocks after depth scaling.</summary>
    /// <param name="layers">Unscaled number of blocks.</param>
    public int Depth(int layers) => (int)Math.Ceiling(layers * DepthMult);
}

/// <summary>
/// torchvision's EfficientNet B0–B7 and EfficientNetV2 S/M/L: <c>features.0</c> stem (3×3/2 conv, SiLU), one Sequential of
/// MBConv/FusedMBConv blocks per stage, a final 1×1 conv (timm's <c>conv_head</c>), then dropout (<c>classifier.0</c>,
/// torchvision's per-variant value by default) and <c>classifier.1</c>. Blocks use SiLU, squeeze-excitation
/// (<c>max(1, in // 4)</c> channels) and residual stochastic depth ("row" mode, probability <c>0.2 · block / blocks</c>),
/// active only in training. Feature stages as timm (B0: 16/2, 24/4, 40/8, 112/16, 320/32).
/// </summary>
public sealed class EfficientNet : SequentialBackbone
{
    private readonly ModuleContainer? classifier;
    private nn.Module<Tensor, Tensor>? _head;

    /// <summary>Builds the network with torchvision's initialisation.</summary>
    /// <param name="architecture">Variant to build.</param>
    /// <param name="options">Creation options (<see cref="ModelOptions.DropPathRate"/> overrides the stochastic-depth rate).</param>
    /// <param name="device">Device for the parameters; null for the default. The meta device builds without memory.</param>
    public EfficientNet(EfficientNetArchitecture architecture, ModelOptions? options = null, Device? device = null)
        : base(architecture.Name, options ??= new ModelOptions(), Layout(architecture, options, device), LastChannel(architecture),
            architecture.PretrainedConfig, "classifier.", architecture.Dropout)
    {
        Architecture = architecture;
        if (!options.FeaturesOnly)
        {
            classifier = new ModuleContainer("Sequential");
            _head = CreateClassifier(options.NumClasses, device);
            classifier.Set("1", _head);
            register_module("classifier", classifier);
        }
        if (!Layers.IsMeta(device))
        {
            Layers.InitializeCnn(this, l =>
            {
                double range = 1.0 / Math.Sqrt(l.out_features);
                nn.init.uniform_(l.weight, -range, range);
                nn.init.zeros_(l.bias);
            });
        }
    }

    /// <summary>The architecture this model was built from.</summary>
    public EfficientNetArchitecture Architecture { get; }

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? Classifier { get => _head; set => _head = value; }

    private static int LastChannel(EfficientNetArchitecture a) => a.LastChannel ?? 4 * a.Scale(a.Stages[^1].OutChannels);

    private static FeatureLayout Layout(EfficientNetArchitecture a, ModelOptions options, Device? device)
    {
        var norm = a.Norm;
        Func<nn.Module<Tensor, Tensor>> silu = () => nn.SiLU();
        int stem = a.Scale(a.Stages[0].InChannels);
        var layers = new List<nn.Module<Tensor, Tensor>> { Layers.ConvNormAct(options.InChannels, stem, 3, 2, 1, silu, norm, device) };
        var channels = new List<int> { stem };
        var reductions = new List<int> { 2 };
        double dropPath = options.DropPathRate ?? EfficientNetArchitecture.DefaultDropPathRate;
        int total = a.Stages.Sum(s => a.Depth(s.Layers));
        int blockId = 0;
        foreach (var stage in a.Stages)
        {
            var blocks = new List<nn.Module<Tensor, Tensor>>();
            int output = a.Scale(stage.OutChannels);
            for (int i = 0; i < a.Depth(stage.Layers); i++)
            {
                int input = i == 0 ? a.Scale(stage.InChannels) : output;
                int stride = i == 0 ? stage.Stride : 1;
                double sd = dropPath * blockId / total;
                int expanded = Layers.MakeDivisible(input * stage.ExpandRatio, 8);
                var branch = new List<nn.Module<Tensor, Tensor>>();
                if (stage.Fused)
                {
                    if (expanded != input)
                    {
                        branch.Add(Layers.ConvNormAct(input, expanded, stage.Kernel, stride, 1, silu, norm, device));
                        branch.Add(Layers.ConvNormAct(expanded, output, 1, 1, 1, null, norm, device));
                    }
                    else
                    {
                        branch.Add(Layers.ConvNormAct(input, output, stage.Kernel, stride, 1, silu, norm, device));
                    }
                }
                else
                {
                    if (expanded != input) branch.Add(Layers.ConvNormAct(input, expanded, 1, 1, 1, silu, norm, device));
                    branch.Add(Layers.ConvNormAct(expanded, expanded, stage.Kernel, stride, expanded, silu, norm, device));
                    branch.Add(new SqueezeExcitation(expanded, Math.Max(1, input / 4), nn.SiLU(), nn.Sigmoid(), device));
                    branch.Add(Layers.ConvNormAct(expanded, output, 1, 1, 1, null, norm, device));
                }
                blocks.Add(new InvertedResidual("block", nn.Sequential(branch), stride == 1 && input == output, sd));
                blockId++;
            }
            layers.Add(nn.Sequential(blocks));
            channels.Add(output);
            reductions.Add(reductions[^1] * stage.Stride);
        }
        int body = layers.Count;
        int last = LastChannel(a);
        layers.Add(Layers.ConvNormAct(channels[^1], last, 1, 1, 1, silu, norm, device));
        channels.Add(last);
        reductions.Add(reductions[^1]);
        return new FeatureLayout(layers, channels, reductions, body);
    }
}

/// <summary>Registers torchvision's EfficientNet B0–B7 and V2 S/M/L with their IMAGENET1K_V1 configurations.</summary>
public sealed partial class EfficientNetFamily : IModelFamily
{
    /// <summary>The registered names of the family's models, one constant each (the <c>CnnTrainer</c> factories name models by them).</summary>
    public static class Names
    {
        /// <summary><c>efficientnet_b0</c>.</summary>
        public const string EfficientNetB0 = "efficientnet_b0";

        /// <summary><c>efficientnet_b1</c>.</summary>
        public const string EfficientNetB1 = "efficientnet_b1";

        /// <summary><c>efficientnet_b2</c>.</summary>
        public const string EfficientNetB2 = "efficientnet_b2";

        /// <summary><c>efficientnet_b3</c>.</summary>
        public const string EfficientNetB3 = "efficientnet_b3";

        /// <summary><c>efficientnet_b4</c>.</summary>
        public const string EfficientNetB4 = "efficientnet_b4";

        /// <summary><c>efficientnet_b5</c>.</summary>
        public const string EfficientNetB5 = "efficientnet_b5";

        /// <summary><c>efficientnet_b6</c>.</summary>
        public const string EfficientNetB6 = "efficientnet_b6";

        /// <summary><c>efficientnet_b7</c>.</summary>
        public const string EfficientNetB7 = "efficientnet_b7";

        /// <summary><c>efficientnet_v2_s</c>.</summary>
        public const string EfficientNetV2S = "efficientnet_v2_s";

        /// <summary><c>efficientnet_v2_m</c>.</summary>
        public const string EfficientNetV2M = "efficientnet_v2_m";

        /// <summary><c>efficientnet_v2_l</c>.</summary>
        public const string EfficientNetV2L = "efficientnet_v2_l";
    }

    /// <summary>Family name used in <see cref="ModelInfo.Family"/>.</summary>
    public const string Family = "efficientnet";

    /// <summary>Auto: what the family measured faster on a CPU with native bfloat16 (docs/performance.md).</summary>
    public AutoCompute AutoCompute => AutoCompute.BFloat16AndChannelsLast;

    private static readonly EfficientNetStage[] V1 =
    [
        new(false, 1, 3, 1, 32, 16, 1), new(false, 6, 3, 2, 16, 24, 2), new(false, 6, 5, 2, 24, 40, 2), new(false, 6, 3, 2, 40, 80, 3),
        new(false, 6, 5, 1, 80, 112, 3), new(false, 6, 5, 2, 112, 192, 4), new(false, 6, 3, 1, 192, 320, 1),
    ];

    private static readonly EfficientNetStage[] V2S =
    [
        new(true, 1, 3, 1, 24, 24, 2), new(true, 4, 3, 2, 24, 48, 4), new(true, 4, 3, 2, 48, 64, 4),
        new(false, 4, 3, 2, 64, 128, 6), new(false, 6, 3, 1, 128, 160, 9), new(false, 6, 3, 2, 160, 256, 15),
    ];

    private static readonly EfficientNetStage[] V2M =
    [
        new(true, 1, 3, 1, 24, 24, 3), new(true, 4, 3, 2, 24, 48, 5), new(true, 4, 3, 2, 48, 80, 5), new(false, 4, 3, 2, 80, 160, 7),
        new(false, 6, 3, 1, 160, 176, 14), new(false, 6, 3, 2, 176, 304, 18), new(false, 6, 3, 1, 304, 512, 5),
    ];

    private static readonly EfficientNetStage[] V2L =
    [
        new(true, 1, 3, 1, 32, 32, 4), new(true, 4, 3, 2, 32, 64, 7), new(true, 4, 3, 2, 64, 96, 7), new(false, 4, 3, 2, 96, 192, 10),
        new(false, 6, 3, 1, 192, 224, 19), new(false, 6, 3, 2, 224, 384, 25), new(false, 6, 3, 1, 384, 640, 7),
    ];

    /// <summary>The architectures, as torchvision defines them.</summary>
    public static IReadOnlyList<EfficientNetArchitecture> Architectures { get; } =
    [
        V1Variant(EfficientNetFamily.Names.EfficientNetB0, 1.0, 1.0, 0.2, 224, 256),
        V1Variant(EfficientNetFamily.Names.EfficientNetB1, 1.0, 1.1, 0.2, 240, 256),
        V1Variant(EfficientNetFamily.Names.EfficientNetB2, 1.1, 1.2, 0.3, 288, 288),
        V1Variant(EfficientNetFamily.Names.EfficientNetB3, 1.2, 1.4, 0.3, 300, 320),
        V1Variant(EfficientNetFamily.Names.EfficientNetB4, 1.4, 1.8, 0.4, 380, 384),
        V1Variant(EfficientNetFamily.Names.EfficientNetB5, 1.6, 2.2, 0.4, 456, 456, large: true),
        V1Variant(EfficientNetFamily.Names.EfficientNetB6, 1.8, 2.6, 0.5, 528, 528, large: true),
        V1Variant(EfficientNetFamily.Names.EfficientNetB7, 2.0, 3.1, 0.5, 600, 600, large: true),
        V2Variant(EfficientNetFamily.Names.EfficientNetV2S, V2S, 0.2, 384, "bilinear"),
        V2Variant(EfficientNetFamily.Names.EfficientNetV2M, V2M, 0.3, 480, "bilinear"),
        // torchvision's V2-L weights were ported from the original TF checkpoint, which normalises with mean = std = 0.5.
        V2Variant(EfficientNetFamily.Names.EfficientNetV2L, V2L, 0.4, 480, "bicubic", halfNormalisation: true),
    ];

    /// <inheritdoc />
    public IEnumerable<ModelDefinition> Models =>
        Architectures.Select(a => new ModelDefinition(a.Name, Family, a.PretrainedConfig, (o, d) => new EfficientNet(a, o, d)).WithWeights(WeightsEnums));

    private static EfficientNetArchitecture V1Variant(string name, double width, double depth, double dropout, int crop, int resize, bool large = false) =>
        new(name, V1, width, depth, dropout, null, large ? new BatchNormSettings(1e-3, 0.01) : BatchNormSettings.Default,
            Config(crop, resize, "bicubic"));

    private static EfficientNetArchitecture V2Variant(string name, EfficientNetStage[] stages, double dropout, int size, string interpolation,
        bool halfNormalisation = false)
    {
        var config = Config(size, size, interpolation);
        if (halfNormalisation) config = config with { Mean = [0.5, 0.5, 0.5], Std = [0.5, 0.5, 0.5] };
        return new(name, stages, 1.0, 1.0, dropout, 1280, new BatchNormSettings(1e-3, 0.1), config);
    }

    // torchvision IMAGENET1K_V1: ImageClassification(crop_size, resize_size, interpolation) with ImageNet mean/std.
    private static PretrainedConfig Config(int crop, int resize, string interpolation) =>
        PretrainedConfig.TorchvisionImageNet(crop, resize, "features.0.0", "classifier.1", "torchvision IMAGENET1K_V1") with { Interpolation = interpolation };
}
