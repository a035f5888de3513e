using Cnn.Backbones.Compute;
using Cnn.Backbones.Onnx.Export;
using Cnn.Backbones.Weights.Catalog;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Models;

/// <summary>Architecture of a VGG variant, as torchvision's <c>cfgs</c> entry and <c>batch_norm</c> flag.</summary>
/// <param name="Name">Variant name, e.g. <c>vgg16_bn</c>.</param>
/// <param name="Layers">Channels of each 3×3 convolution, with 0 marking a 2×2 max pooling (torchvision's <c>"M"</c>).</param>
/// <param name="BatchNorm">BatchNorm after every convolution.</param>
/// <param name="PretrainedConfig">Configuration of the reference (torchvision IMAGENET1K_V1) weights.</param>
public sealed record VggArchitecture(string Name, IReadOnlyList<int> Layers, bool BatchNorm, PretrainedConfig PretrainedConfig);

/// <summary>
/// torchvision's VGG (11/13/16/19 layers, with or without BatchNorm). Keys, order and shapes equal torchvision 0.14's:
/// <c>features.N</c> (conv [, bn], relu, …, max pool), <c>classifier.{0,3,6}</c>.
/// </summary>
/// <remarks>
/// <para>Feature stages follow timm's VGG <c>feature_info</c>: the ReLU just before each max pooling (reductions 1, 2, 4, 8, 16),
/// then the final pooled map <c>features.{last}</c> (reduction 32) that <see cref="Backbone.ForwardFeatures"/> returns, as
/// torchvision's <c>model.features(x)</c>.</para>
/// <para>The head is torchvision's: <c>AdaptiveAvgPool2d(7)</c> (so small inputs such as 64×64 work), flatten, then
/// <c>classifier</c> (25088→4096, ReLU, dropout, 4096→4096, ReLU, dropout, 4096→classes). <see cref="Backbone.NumFeatures"/>
/// is 4096 (timm's <c>num_features</c>), the input of <c>classifier.6</c>, which <see cref="Backbone.ResetClassifier"/> replaces.
/// The dropout probability is torchvision's 0.5 unless <see cref="ModelOptions.DropRate"/> is set.</para>
/// </remarks>
public sealed class Vgg : Backbone
{
    private readonly IndexedSequence features;
    private readonly AdaptiveAvgPool2d? avgpool;
    private readonly IndexedSequence? classifier;
    private readonly (int Start, int End)[] _stageRanges;
    private readonly IReadOnlyList<StageGroup> _stageGroups;

    /// <summary>Builds the network with torchvision's initialisation (Kaiming-normal fan-out convs, N(0, 0.01) linear layers, zero biases).</summary>
    /// <param name="architecture">Variant to build.</param>
    /// <param name="options">Creation options.</param>
    /// <param name="device">Device for the parameters; null for the default (CPU). The meta device builds without memory.</param>
    public Vgg(VggArchitecture architecture, ModelOptions? options = null, Device? device = null)
        : base(architecture.Name, ClassicLayers.WithHeadDropout(options ?? new ModelOptions(), 0.5), 4096, FeatureInfoOf(architecture), architecture.PretrainedConfig)
    {
        options ??= new ModelOptions();
        Architecture = architecture;
        var layers = new List<nn.Module<Tensor, Tensor>>();
        var ranges = new List<(int, int)>();
        int channels = options.InChannels, stageStart = 0;
        foreach (int v in architecture.Layers)
        {
            if (v == 0)
            {
                ranges.Add((stageStart, layers.Count)); // the stage ends at the ReLU before the pooling
                stageStart = layers.Count;
                layers.Add(nn.MaxPool2d(2, 2));
                continue;
            }
            layers.Add(Ops.Conv2d(channels, v, 3, padding: 1, device: device));
            if (architecture.BatchNorm) layers.Add(Ops.BatchNorm2d(v, device: device));
            layers.Add(nn.ReLU());
            channels = v;
        }
        ranges.Add((stageStart, layers.Count)); // the final pooling
        features = new IndexedSequence(layers);
        _stageRanges = ranges.ToArray();

        if (!options.FeaturesOnly)
        {
            avgpool = nn.AdaptiveAvgPool2d(7);
            classifier = new IndexedSequence(
            [
                Ops.Linear(512 * 7 * 7, 4096, device: device), nn.ReLU(), nn.Dropout(DropRate),
                Ops.Linear(4096, 4096, device: device), nn.ReLU(), nn.Dropout(DropRate),
                CreateClassifier(options.NumClasses, device),
            ]);
        }
        RegisterComponents();

        var groups = new List<StageGroup>();
        for (int i = 0; i < _stageRanges.Length; i++)
        {
            var prefixes = ClassicLayers.ParameterPrefixes("features", features, _stageRanges[i].Start, _stageRanges[i].End).ToArray();
            if (prefixes.Length > 0) groups.Add(new StageGroup($"stage{i}", prefixes));
        }
        groups.Add(new StageGroup("pre_logits", ["classifier.0.", "classifier.3."]));
        groups.Add(new StageGroup("head", ["classifier.6."]));
        _stageGroups = groups;
        InitializeWeights();
    }

    /// <summary>The architecture this model was built from.</summary>
    public VggArchitecture Architecture { get; }

    /// <summary>32: torchvision's <c>min_size</c> for VGG (five 2×2 poolings).</summary>
    public override int MinInputSize => 32;

    /// <summary>One group per feature stage with parameters (<c>stage0</c>..<c>stage4</c>), then <c>pre_logits</c> and <c>head</c>.</summary>
    public override IReadOnlyList<StageGroup> StageGroups => _stageGroups;

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? Classifier
    {
        get => classifier?[6];
        set => classifier!.Replace(6, value!);
    }

    /// <inheritdoc />
    protected override void ReplaceClassifier(nn.Module<Tensor, Tensor> head) => Classifier = head;

    /// <inheritdoc />
    protected override Tensor ForwardStage(int index, Tensor x)
    {
        if (index < 0 || index >= _stageRanges.Length)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"{GetName()} has feature stages 0..{_stageRanges.Length - 1}.");
        return features.Run(x, _stageRanges[index].Start, _stageRanges[index].End);
    }

    /// <inheritdoc/>
    public override bool HeadSplitsAtPreLogits => false;

    /// <inheritdoc />
    private protected override string ExportStage(int index, OnnxExportContext context, string x) =>
        features.Export(context, x, _stageRanges[index].Start, _stageRanges[index].End);

    /// <inheritdoc />
    private protected override string ExportHead(OnnxExportContext context, string features) =>
        ClassicLayers.ExportPooledHead(context, avgpool!, classifier!, features);

    /// <summary>Adaptive average pool to 7×7, flatten, then <c>classifier</c>.</summary>
    /// <param name="x">The last feature map [N, 512, h, w].</param>
    /// <param name="preLogits">Return the 4096-wide input of <c>classifier.6</c> instead of logits.</param>
    protected override Tensor ForwardHeadCore(Tensor x, bool preLogits)
    {
        var head = GetClassifier();
        using var scope = NewDisposeScope();
        var h = classifier!.Run(avgpool!.call(x).flatten(1), 0, 6);
        return (preLogits ? h : head.call(h)).MoveToOuterDisposeScope();
    }

    private static IReadOnlyList<FeatureInfo> FeatureInfoOf(VggArchitecture a)
    {
        var info = new List<FeatureInfo>();
        int index = 0, channels = 0, reduction = 1;
        foreach (int v in a.Layers)
        {
            if (v == 0)
            {
                info.Add(new FeatureInfo(channels, reduction, $"features.{index - 1}"));
                index++;
                reduction *= 2;
                continue;
            }
            index += a.BatchNorm ? 3 : 2;
            channels = v;
        }
        info.Add(new FeatureInfo(channels, reduction, $"features.{index - 1}"));
        return info;
    }

    private void InitializeWeights()
    {
        using var noGrad = no_grad();
        foreach (var (_, module) in named_modules())
        {
            switch (module)
            {
                case PrecisionConv2d conv:
                    nn.init.kaiming_normal_(conv.weight, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);
                    if (conv.bias is not null) nn.init.zeros_(conv.bias);
                    break;
                case FoldableBatchNorm2d bn:
                    nn.init.ones_(bn.weight);
                    nn.init.zeros_(bn.bias);
                    break;
                case PrecisionLinear linear:
                    nn.init.normal_(linear.weight, 0, 0.01);
                    if (linear.bias is not null) nn.init.zeros_(linear.bias);
                    break;
            }
        }
    }
}

/// <summary>Registers torchvision's VGG variants (vgg11..vgg19, with and without BatchNorm) with their IMAGENET1K_V1 configurations.</summary>
public sealed partial class VggFamily : IModelFamily
{
    /// <summary>The registered names of the family's models, one constant each (the <c>CnnTrainer</c> factories name models by them).</summary>
    public static class Names
    {
        /// <summary><c>vgg11</c>.</summary>
        public const string Vgg11 = "vgg11";

        /// <summary><c>vgg11_bn</c>.</summary>
        public const string Vgg11Bn = "vgg11_bn";

        /// <summary><c>vgg13</c>.</summary>
        public const string Vgg13 = "vgg13";

        /// <summary><c>vgg13_bn</c>.</summary>
        public const string Vgg13Bn = "vgg13_bn";

        /// <summary><c>vgg16</c>.</summary>
        public const string Vgg16 = "vgg16";

        /// <summary><c>vgg16_bn</c>.</summary>
        public const string Vgg16Bn = "vgg16_bn";

        /// <summary><c>vgg19</c>.</summary>
        public const string Vgg19 = "vgg19";

        /// <summary><c>vgg19_bn</c>.</summary>
        public const string Vgg19Bn = "vgg19_bn";
    }

    /// <summary>Family name used in <see cref="ModelInfo.Family"/>.</summary>
    public const string Family = "vgg";

    /// <summary>Auto: what the family measured faster on a CPU with native bfloat16 (docs/performance.md).</summary>
    public AutoCompute AutoCompute => AutoCompute.BFloat16ChannelsLastInBFloat16;

    private const int M = 0;
    private static readonly int[] A = [64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M];
    private static readonly int[] B = [64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M];
    private static readonly int[] D = [64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M];
    private static readonly int[] E = [64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512, 512, 512, M];

    /// <summary>The architectures, by name, as torchvision defines them.</summary>
    public static IReadOnlyList<VggArchitecture> Architectures { get; } =
    [
        Define(VggFamily.Names.Vgg11, A, false), Define(VggFamily.Names.Vgg11Bn, A, true),
        Define(VggFamily.Names.Vgg13, B, false), Define(VggFamily.Names.Vgg13Bn, B, true),
        Define(VggFamily.Names.Vgg16, D, false), Define(VggFamily.Names.Vgg16Bn, D, true),
        Define(VggFamily.Names.Vgg19, E, false), Define(VggFamily.Names.Vgg19Bn, E, true),
    ];

    /// <inheritdoc />
    public IEnumerable<ModelDefinition> Models =>
        Architectures.Select(a => new ModelDefinition(a.Name, Family, a.PretrainedConfig, (options, device) => new Vgg(a, options, device)).WithWeights(WeightsEnums));

    private static VggArchitecture Define(string name, int[] layers, bool batchNorm) =>
        new(name, layers, batchNorm,
            PretrainedConfig.TorchvisionImageNet(224, 256, "features.0", "classifier.6", "torchvision IMAGENET1K_V1"));
}
