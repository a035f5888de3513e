using System.Globalization;
using System.Text.RegularExpressions;
using Cnn.Backbones.Compute;
using Cnn.Backbones.Onnx.Export;
using Cnn.Backbones.Weights.Catalog;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Models;

/// <summary>Architecture of a DenseNet variant, as the arguments of torchvision's <c>DenseNet(growth_rate, block_config, num_init_features)</c>.</summary>
/// <param name="Name">Variant name, e.g. <c>densenet121</c>.</param>
/// <param name="GrowthRate">Channels each dense layer adds.</param>
/// <param name="BlockConfig">Dense layers in each of the four blocks.</param>
/// <param name="NumInitFeatures">Channels of the stem convolution.</param>
/// <param name="PretrainedConfig">Configuration of the reference (torchvision IMAGENET1K_V1) weights.</param>
public sealed record DenseNetArchitecture(string Name, int GrowthRate, IReadOnlyList<int> BlockConfig, int NumInitFeatures, PretrainedConfig PretrainedConfig)
{
    /// <summary>Bottleneck width multiplier (<c>bn_size</c>): the 1×1 convolution outputs <c>4 · growth_rate</c> channels.</summary>
    public int BottleneckSize => 4;
}

/// <summary>
/// torchvision's DenseNet (121/161/169/201). Keys, order and shapes equal torchvision 0.14's: <c>features.conv0/norm0</c>,
/// <c>features.denseblockK.denselayerI.norm1/conv1/norm2/conv2</c>, <c>features.transitionK.norm/conv</c>, <c>features.norm5</c>,
/// <c>classifier</c>; all convolutions are bias-free.
/// </summary>
/// <remarks>
/// <para>Old-style checkpoints (keys <c>…denselayerI.norm.1.weight</c>, <c>conv.2</c>, …) load too: their keys are remapped as
/// torchvision's <c>_load_state_dict</c> does.</para>
/// <para>Feature stages follow timm's DenseNet: the stem (<c>features.relu0</c>, reduction 2), each dense block before its
/// transition (<c>features.denseblock1..3</c>, reductions 4, 8, 16) and the final normalised map (<c>features.relu5</c>,
/// reduction 32). <c>relu5</c> is the ReLU torchvision applies after <c>features</c> in its forward (timm folds it into
/// <c>norm5</c>); it has no parameters, so checkpoints are unaffected.</para>
/// </remarks>
public sealed class DenseNet : Backbone
{
    private static readonly Regex OldLayerKey =
        new(@"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$", RegexOptions.CultureInvariant);

    private readonly DenseNetFeatures features;
    private nn.Module<Tensor, Tensor>? classifier;
    private readonly IReadOnlyList<StageGroup> _stageGroups;

    /// <summary>Builds the network with torchvision's initialisation (Kaiming-normal convolutions, BatchNorm 1/0, zero linear bias).</summary>
    /// <param name="architecture">Variant to build.</param>
    /// <param name="options">Creation options.</param>
    /// <param name="device">Device for the parameters; null for the default (CPU). The meta device builds without memory.</param>
    public DenseNet(DenseNetArchitecture architecture, ModelOptions? options = null, Device? device = null)
        : base(architecture.Name, options ??= new ModelOptions(), FinalChannels(architecture), FeatureInfoOf(architecture), architecture.PretrainedConfig)
    {
        Architecture = architecture;
        features = new DenseNetFeatures(architecture, options.InChannels, device);
        if (!options.FeaturesOnly) classifier = CreateClassifier(options.NumClasses, device);
        RegisterComponents();
        _stageGroups =
        [
            new("stem", ["features.conv0.", "features.norm0."]),
            new("denseblock1", ["features.denseblock1."]),
            new("denseblock2", ["features.transition1.", "features.denseblock2."]),
            new("denseblock3", ["features.transition2.", "features.denseblock3."]),
            new("denseblock4", ["features.transition3.", "features.denseblock4.", "features.norm5."]),
            new("head", ["classifier."]),
        ];
        InitializeWeights();
    }

    /// <summary>The architecture this model was built from.</summary>
    public DenseNetArchitecture Architecture { get; }

    /// <summary>29: torchvision's <c>min_size</c> for DenseNet.</summary>
    public override int MinInputSize => 29;

    /// <inheritdoc />
    public override IReadOnlyList<StageGroup> StageGroups => _stageGroups;

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? Classifier { get => classifier; set => classifier = value; }

    /// <inheritdoc />
    protected override Tensor ForwardStage(int index, Tensor x) => features.ForwardStage(index, x);

    /// <inheritdoc />
    private protected override string ExportStage(int index, OnnxExportContext context, string x) => features.ExportStage(index, context, x);

    /// <summary>Renames old-style dense-layer keys (<c>norm.1.weight</c> → <c>norm1.weight</c>), as torchvision does.</summary>
    /// <param name="weights">The file's entries (a private copy).</param>
    protected override void RemapWeights(Cnn.Backbones.Weights.StateDict weights) =>
        weights.Rename(k => OldLayerKey.Match(k) is { Success: true } m ? m.Groups[1].Value + m.Groups[2].Value : k);

    private static int FinalChannels(DenseNetArchitecture a)
    {
        int channels = a.NumInitFeatures;
        for (int i = 0; i < a.BlockConfig.Count; i++)
        {
            channels += a.BlockConfig[i] * a.GrowthRate;
            if (i != a.BlockConfig.Count - 1) channels /= 2;
        }
        return channels;
    }

    private static IReadOnlyList<FeatureInfo> FeatureInfoOf(DenseNetArchitecture a)
    {
        var info = new List<FeatureInfo> { new(a.NumInitFeatures, 2, "features.relu0") };
        int channels = a.NumInitFeatures, reduction = 4;
        for (int i = 0; i < a.BlockConfig.Count; i++)
        {
            channels += a.BlockConfig[i] * a.GrowthRate;
            if (i == a.BlockConfig.Count - 1) break;
            info.Add(new FeatureInfo(channels, reduction, $"features.denseblock{(i + 1).ToString(CultureInfo.InvariantCulture)}"));
            channels /= 2;
            reduction *= 2;
        }
        info.Add(new FeatureInfo(channels, reduction, "features.relu5"));
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
                    nn.init.kaiming_normal_(conv.weight);
                    break;
                case FoldableBatchNorm2d bn:
                    nn.init.ones_(bn.weight);
                    nn.init.zeros_(bn.bias);
                    break;
                case PrecisionLinear linear:
                    if (linear.bias is not null) nn.init.zeros_(linear.bias);
                    break;
            }
        }
    }

    /// <summary>torchvision's <c>features</c> Sequential, with named children and stage-wise execution.</summary>
    private sealed class DenseNetFeatures : nn.Module<Tensor, Tensor>
    {
        private readonly PrecisionConv2d conv0;
        private readonly FoldableBatchNorm2d norm0;
        private readonly ReLU relu0;
        private readonly MaxPool2d pool0;
        private readonly DenseBlock[] _blocks;
        private readonly Transition[] _transitions;
        private readonly FoldableBatchNorm2d norm5;
        private readonly ReLU relu5;

        public DenseNetFeatures(DenseNetArchitecture a, int inChannels, Device? device) : base("Sequential")
        {
            conv0 = Ops.Conv2d(inChannels, a.NumInitFeatures, 7, stride: 2, padding: 3, bias: false, device: device);
            norm0 = Ops.BatchNorm2d(a.NumInitFeatures, device: device);
            relu0 = nn.ReLU();
            pool0 = nn.MaxPool2d(3, 2, 1);
            register_module("conv0", conv0);
            register_module("norm0", norm0);
            register_module("relu0", relu0);
            register_module("pool0", pool0);
            int channels = a.NumInitFeatures;
            _blocks = new DenseBlock[a.BlockConfig.Count];
            _transitions = new Transition[a.BlockConfig.Count - 1];
            for (int i = 0; i < a.BlockConfig.Count; i++)
            {
                string k = (i + 1).ToString(CultureInfo.InvariantCulture);
                _blocks[i] = new DenseBlock(a.BlockConfig[i], channels, a.BottleneckSize, a.GrowthRate, device);
                register_module("denseblock" + k, _blocks[i]);
                channels += a.BlockConfig[i] * a.GrowthRate;
                if (i == a.BlockConfig.Count - 1) break;
                _transitions[i] = new Transition(channels, channels / 2, device);
                register_module("transition" + k, _transitions[i]);
                channels /= 2;
            }
            norm5 = Ops.BatchNorm2d(channels, device: device);
            relu5 = nn.ReLU();
            register_module("norm5", norm5);
            register_module("relu5", relu5);
        }

        public Tensor ForwardStage(int index, Tensor x)
        {
            using var scope = NewDisposeScope();
            Tensor result = index switch
            {
                0 => relu0.call(norm0.call(conv0.call(x))),
                1 => _blocks[0].call(pool0.call(x)),
                2 or 3 => _blocks[index - 1].call(_transitions[index - 2].call(x)),
                4 => relu5.call(norm5.call(_blocks[3].call(_transitions[2].call(x)))),
                _ => throw new ArgumentOutOfRangeException(nameof(index), index, "DenseNet has feature stages 0..4."),
            };
            return result.MoveToOuterDisposeScope();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            var h = x;
            for (int i = 0; i < 5; i++) h = ForwardStage(i, h);
            return h.MoveToOuterDisposeScope();
        }

        public string ExportStage(int index, OnnxExportContext context, string x) => index switch
        {
            0 => context.EmitAll(x, [conv0, norm0, relu0]),
            1 => context.EmitAll(x, [pool0, _blocks[0]]),
            2 or 3 => context.EmitAll(x, [_transitions[index - 2], _blocks[index - 1]]),
            4 => context.EmitAll(x, [_transitions[2], _blocks[3], norm5, relu5]),
            _ => throw new ArgumentOutOfRangeException(nameof(index), index, "DenseNet has feature stages 0..4."),
        };
    }

    /// <summary>torchvision's <c>_DenseLayer</c>: BN → ReLU → 1×1 conv (bottleneck) → BN → ReLU → 3×3 conv, on the concatenated inputs.</summary>
    private sealed class DenseLayer : nn.Module<Tensor, Tensor>, IOnnxExportable
    {
        private readonly FoldableBatchNorm2d norm1;
        private readonly ReLU relu1;
        private readonly PrecisionConv2d conv1;
        private readonly FoldableBatchNorm2d norm2;
        private readonly ReLU relu2;
        private readonly PrecisionConv2d conv2;

        public DenseLayer(int inChannels, int growthRate, int bnSize, Device? device) : base("_DenseLayer")
        {
            norm1 = Ops.BatchNorm2d(inChannels, device: device);
            relu1 = nn.ReLU();
            conv1 = Ops.Conv2d(inChannels, bnSize * growthRate, 1, bias: false, device: device);
            norm2 = Ops.BatchNorm2d(bnSize * growthRate, device: device);
            relu2 = nn.ReLU();
            conv2 = Ops.Conv2d(bnSize * growthRate, growthRate, 3, padding: 1, bias: false, device: device);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            return norm1.call(x).Then(relu1).Then(conv1).Then(norm2).Then(relu2).Then(conv2).MoveToOuterDisposeScope();
        }

        public string ExportOnnx(OnnxExportContext context, string input) => context.EmitAll(input, [norm1, relu1, conv1, norm2, relu2, conv2]);
    }

    /// <summary>torchvision's <c>_DenseBlock</c>: each layer sees the concatenation of the block input and all earlier outputs.</summary>
    private sealed class DenseBlock : nn.Module<Tensor, Tensor>, IOnnxExportable
    {
        private readonly DenseLayer[] _layers;

        public DenseBlock(int numLayers, int inChannels, int bnSize, int growthRate, Device? device) : base("_DenseBlock")
        {
            _layers = new DenseLayer[numLayers];
            for (int i = 0; i < numLayers; i++)
            {
                _layers[i] = new DenseLayer(inChannels + i * growthRate, growthRate, bnSize, device);
                register_module("denselayer" + (i + 1).ToString(CultureInfo.InvariantCulture), _layers[i]);
            }
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            var outputs = new List<Tensor> { x };
            foreach (var layer in _layers) outputs.Add(cat(outputs, 1).Then(layer));
            return cat(outputs, 1).MoveToOuterDisposeScope();
        }

        public string ExportOnnx(OnnxExportContext context, string input)
        {
            var outputs = new List<string> { input };
            foreach (var layer in _layers) outputs.Add(context.Emit(layer, outputs.Count == 1 ? input : context.Concat(1, [.. outputs])));
            return context.Concat(1, [.. outputs]);
        }
    }

    /// <summary>torchvision's <c>_Transition</c>: BN → ReLU → 1×1 conv → 2×2 average pool.</summary>
    private sealed class Transition : nn.Module<Tensor, Tensor>, IOnnxExportable
    {
        private readonly FoldableBatchNorm2d norm;
        private readonly ReLU relu;
        private readonly PrecisionConv2d conv;
        private readonly AvgPool2d pool;

        public Transition(int inChannels, int outChannels, Device? device) : base("_Transition")
        {
            norm = Ops.BatchNorm2d(inChannels, device: device);
            relu = nn.ReLU();
            conv = Ops.Conv2d(inChannels, outChannels, 1, bias: false, device: device);
            pool = nn.AvgPool2d(2, 2);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            return norm.call(x).Then(relu).Then(conv).Then(pool).MoveToOuterDisposeScope();
        }

        public string ExportOnnx(OnnxExportContext context, string input) => context.EmitAll(input, [norm, relu, conv, pool]);
    }
}

/// <summary>Registers torchvision's DenseNet variants with their IMAGENET1K_V1 configurations.</summary>
public sealed partial class DenseNetFamily : IModelFamily
{
    /// <summary>The registered names of the family's models, one constant each (the <c>CnnTrainer</c> factories name models by them).</summary>
    public static class Names
    {
        /// <summary><c>densenet121</c>.</summary>
        public const string DenseNet121 = "densenet121";

        /// <summary><c>densenet161</c>.</summary>
        public const string DenseNet161 = "densenet161";

        /// <summary><c>densenet169</c>.</summary>
        public const string DenseNet169 = "densenet169";

        /// <summary><c>densenet201</c>.</summary>
        public const string DenseNet201 = "densenet201";
    }

    /// <summary>Family name used in <see cref="ModelInfo.Family"/>.</summary>
    public const string Family = "densenet";

    /// <summary>Auto: what the family measured faster on a CPU with native bfloat16 (docs/performance.md).</summary>
    public AutoCompute AutoCompute => AutoCompute.BFloat16AndChannelsLast;

    /// <summary>The architectures, by name, as torchvision defines them.</summary>
    public static IReadOnlyList<DenseNetArchitecture> Architectures { get; } =
    [
        Define(DenseNetFamily.Names.DenseNet121, 32, [6, 12, 24, 16], 64),
        Define(DenseNetFamily.Names.DenseNet161, 48, [6, 12, 36, 24], 96),
        Define(DenseNetFamily.Names.DenseNet169, 32, [6, 12, 32, 32], 64),
        Define(DenseNetFamily.Names.DenseNet201, 32, [6, 12, 48, 32], 64),
    ];

    /// <inheritdoc />
    public IEnumerable<ModelDefinition> Models =>
        Architectures.Select(a => new ModelDefinition(a.Name, Family, a.PretrainedConfig, (options, device) => new DenseNet(a, options, device)).WithWeights(WeightsEnums));

    private static DenseNetArchitecture Define(string name, int growthRate, int[] blocks, int initFeatures) =>
        new(name, growthRate, blocks, initFeatures,
            PretrainedConfig.TorchvisionImageNet(224, 256, "features.conv0", "classifier", "torchvision IMAGENET1K_V1"));
}
