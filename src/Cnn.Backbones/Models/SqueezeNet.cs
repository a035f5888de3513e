using Cnn.Backbones.Compute;
using Cnn.Backbones.Onnx.Export;
using Cnn.Backbones.Weights.Catalog;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Models;

/// <summary>
/// torchvision's SqueezeNet 1.0 and 1.1: <c>features</c> (a strided stem conv, Fire modules and ceil-mode max pools) and a
/// convolutional classifier <c>classifier</c> = dropout, 1×1 conv <c>classifier.1</c>, ReLU, global average pool. Keys, order and
/// shapes equal torchvision 0.14's (1,248,424 parameters for 1.0).
/// </summary>
/// <remarks>
/// <para>The classifier is the 1×1 convolution <c>classifier.1</c> (torchvision's <c>final_conv</c>);
/// <see cref="Backbone.ResetClassifier"/> replaces it with a fresh 1×1 convolution (N(0, 0.01) weights, zero bias, as
/// torchvision initialises it), or with identity for 0 classes, in which case the model returns the globally pooled 512-channel
/// features. <c>ForwardHead(x, preLogits: true)</c> returns the same pooled vector [N, 512].</para>
/// <para>Feature stages end just before each max pooling (timm's convention), then the last Fire module:
/// 1.0: <c>features.1</c> (96, reduction 2), <c>features.5</c> (256, 4), <c>features.10</c> (512, 8), <c>features.12</c> (512, 16);
/// 1.1: <c>features.1</c> (64, 2), <c>features.4</c> (128, 4), <c>features.7</c> (256, 8), <c>features.12</c> (512, 16).
/// Reductions are nominal: the unpadded stem and ceil-mode pools make maps slightly larger than input / reduction.</para>
/// </remarks>
public sealed class SqueezeNet : Backbone
{
    private readonly IndexedSequence features;
    private readonly IndexedSequence? classifier;
    private readonly (int Start, int End)[] _stageRanges;
    private readonly IReadOnlyList<StageGroup> _stageGroups;

    /// <summary>Builds SqueezeNet with torchvision's initialisation (Kaiming-uniform convolutions, N(0, 0.01) final conv, zero biases).</summary>
    /// <param name="version">"1_0" or "1_1".</param>
    /// <param name="options">Creation options.</param>
    /// <param name="device">Device for the parameters; null for the default (CPU). The meta device builds without memory.</param>
    /// <exception cref="ArgumentException"><paramref name="version"/> is not "1_0" or "1_1".</exception>
    public SqueezeNet(string version, ModelOptions? options = null, Device? device = null)
        : base("squeezenet" + version, ClassicLayers.WithHeadDropout(options ?? new ModelOptions(), 0.5), 512, FeatureInfoOf(version), SqueezeNetFamily.Config)
    {
        options ??= new ModelOptions();
        Version = version;
        int c = options.InChannels;
        if (version == "1_0")
        {
            features = new IndexedSequence(
            [
                Ops.Conv2d(c, 96, 7, stride: 2, device: device), nn.ReLU(), Pool(),
                new Fire(96, 16, 64, 64, device), new Fire(128, 16, 64, 64, device), new Fire(128, 32, 128, 128, device), Pool(),
                new Fire(256, 32, 128, 128, device), new Fire(256, 48, 192, 192, device), new Fire(384, 48, 192, 192, device),
                new Fire(384, 64, 256, 256, device), Pool(),
                new Fire(512, 64, 256, 256, device),
            ]);
            _stageRanges = [(0, 2), (2, 6), (6, 11), (11, 13)];
        }
        else
        {
            features = new IndexedSequence(
            [
                Ops.Conv2d(c, 64, 3, stride: 2, device: device), nn.ReLU(), Pool(),
                new Fire(64, 16, 64, 64, device), new Fire(128, 16, 64, 64, device), Pool(),
                new Fire(128, 32, 128, 128, device), new Fire(256, 32, 128, 128, device), Pool(),
                new Fire(256, 48, 192, 192, device), new Fire(384, 48, 192, 192, device),
                new Fire(384, 64, 256, 256, device), new Fire(512, 64, 256, 256, device),
            ]);
            _stageRanges = [(0, 2), (2, 5), (5, 8), (8, 13)];
        }
        if (!options.FeaturesOnly)
            classifier = new IndexedSequence([nn.Dropout(DropRate), CreateClassifier(options.NumClasses, device), nn.ReLU(), nn.AdaptiveAvgPool2d(1)]);
        RegisterComponents();
        InitializeWeights();
        _stageGroups = _stageRanges
            .Select((r, i) => new StageGroup(i == 0 ? "stem" : $"stage{i}", ClassicLayers.ParameterPrefixes("features", features, r.Start, r.End).ToArray()))
            .Append(new StageGroup("head", ["classifier.1."]))
            .ToArray();
    }

    /// <summary>"1_0" or "1_1".</summary>
    public string Version { get; }

    /// <summary>torchvision's <c>min_size</c>: 21 for 1.0, 17 for 1.1.</summary>
    public override int MinInputSize => Version == "1_0" ? 21 : 17;

    /// <inheritdoc />
    public override IReadOnlyList<StageGroup> StageGroups => _stageGroups;

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? Classifier
    {
        get => classifier?[1];
        set => classifier!.Replace(1, value!);
    }

    /// <inheritdoc />
    protected override void ReplaceClassifier(nn.Module<Tensor, Tensor> head) => Classifier = head;

    /// <summary>A 1×1 convolution from 512 channels to <paramref name="numClasses"/> (N(0, 0.01), zero bias); identity for 0.</summary>
    /// <param name="numClasses">Number of classes, at least 0.</param>
    /// <param name="device">Device for the parameters, or null.</param>
    protected override nn.Module<Tensor, Tensor> CreateClassifier(int numClasses, Device? device = null)
    {
        if (numClasses == 0) return nn.Identity();
        var conv = Ops.Conv2d(512, numClasses, 1, device: device);
        using var noGrad = no_grad();
        nn.init.normal_(conv.weight, 0, 0.01);
        nn.init.zeros_(conv.bias!);
        return conv;
    }

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

    /// <summary>The classifier Sequential (dropout, 1×1 conv, ReLU, global average pool), then flatten.</summary>
    /// <param name="context">The graph being written.</param>
    /// <param name="features">The last feature map.</param>
    private protected override string ExportHead(OnnxExportContext context, string features) =>
        context.Flatten(classifier!.ExportOnnx(context, features));

    /// <summary>torchvision's head: <c>classifier</c> (dropout, 1×1 conv, ReLU, global average pool), flattened to [N, classes].</summary>
    /// <param name="x">The last feature map [N, 512, h, w].</param>
    /// <param name="preLogits">Return the globally average-pooled features [N, 512] instead (after dropout when training).</param>
    protected override Tensor ForwardHeadCore(Tensor x, bool preLogits)
    {
        GetClassifier();
        using var scope = NewDisposeScope();
        var result = preLogits
            ? classifier![0].call(nn.functional.adaptive_avg_pool2d(x, [1, 1]).flatten(1))
            : classifier!.Run(x, 0, 4).flatten(1);
        return result.MoveToOuterDisposeScope();
    }

    private static MaxPool2d Pool() => nn.MaxPool2d(3, 2, ceil_mode: true);

    private static IReadOnlyList<FeatureInfo> FeatureInfoOf(string version) => version switch
    {
        "1_0" => [new(96, 2, "features.1"), new(256, 4, "features.5"), new(512, 8, "features.10"), new(512, 16, "features.12")],
        "1_1" => [new(64, 2, "features.1"), new(128, 4, "features.4"), new(256, 8, "features.7"), new(512, 16, "features.12")],
        _ => throw new ArgumentException($"Unsupported SqueezeNet version '{version}': expected '1_0' or '1_1'.", nameof(version)),
    };

    private void InitializeWeights()
    {
        using var noGrad = no_grad();
        foreach (var (_, module) in features.named_modules())
        {
            if (module is not PrecisionConv2d conv) continue;
            nn.init.kaiming_uniform_(conv.weight);
            if (conv.bias is not null) nn.init.zeros_(conv.bias);
        }
    }

    /// <summary>torchvision's <c>Fire</c> module: 1×1 squeeze + ReLU, then 1×1 and 3×3 expands (each + ReLU), concatenated.</summary>
    private sealed class Fire : nn.Module<Tensor, Tensor>, IOnnxExportable
    {
        private readonly PrecisionConv2d squeeze;
        private readonly ReLU squeeze_activation;
        private readonly PrecisionConv2d expand1x1;
        private readonly ReLU expand1x1_activation;
        private readonly PrecisionConv2d expand3x3;
        private readonly ReLU expand3x3_activation;

        public Fire(int inplanes, int squeezePlanes, int expand1x1Planes, int expand3x3Planes, Device? device) : base(nameof(Fire))
        {
            squeeze = Ops.Conv2d(inplanes, squeezePlanes, 1, device: device);
            squeeze_activation = nn.ReLU();
            expand1x1 = Ops.Conv2d(squeezePlanes, expand1x1Planes, 1, device: device);
            expand1x1_activation = nn.ReLU();
            expand3x3 = Ops.Conv2d(squeezePlanes, expand3x3Planes, 3, padding: 1, device: device);
            expand3x3_activation = nn.ReLU();
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            var s = squeeze_activation.call(squeeze.call(x));
            return cat([expand1x1_activation.call(expand1x1.call(s)), expand3x3_activation.call(expand3x3.call(s))], 1).MoveToOuterDisposeScope();
        }

        public string ExportOnnx(OnnxExportContext context, string input)
        {
            var s = context.EmitAll(input, [squeeze, squeeze_activation]);
            return context.Concat(1, context.EmitAll(s, [expand1x1, expand1x1_activation]), context.EmitAll(s, [expand3x3, expand3x3_activation]));
        }
    }
}

/// <summary>Registers torchvision's <c>squeezenet1_0</c> and <c>squeezenet1_1</c>.</summary>
public sealed partial class SqueezeNetFamily : IModelFamily
{
    /// <summary>The registered names of the family's models, one constant each (the <c>CnnTrainer</c> factories name models by them).</summary>
    public static class Names
    {
        /// <summary><c>squeezenet1_0</c>.</summary>
        public const string SqueezeNet1_0 = "squeezenet1_0";

        /// <summary><c>squeezenet1_1</c>.</summary>
        public const string SqueezeNet1_1 = "squeezenet1_1";
    }

    /// <summary>Family name used in <see cref="ModelInfo.Family"/>.</summary>
    public const string Family = "squeezenet";

    /// <summary>Auto: what the family measured faster on a CPU with native bfloat16 (docs/performance.md).</summary>
    public AutoCompute AutoCompute => AutoCompute.BFloat16ChannelsLastInBFloat16;

    /// <summary>torchvision IMAGENET1K_V1 for both versions: resize 256, crop 224, ImageNet mean/std, bilinear.</summary>
    public static PretrainedConfig Config { get; } =
        PretrainedConfig.TorchvisionImageNet(224, 256, "features.0", "classifier.1", "torchvision IMAGENET1K_V1");

    /// <inheritdoc />
    public IEnumerable<ModelDefinition> Models =>
    [
        new ModelDefinition(SqueezeNetFamily.Names.SqueezeNet1_0, Family, Config, (options, device) => new SqueezeNet("1_0", options, device)).WithWeights(WeightsEnums),
        new ModelDefinition(SqueezeNetFamily.Names.SqueezeNet1_1, Family, Config, (options, device) => new SqueezeNet("1_1", options, device)).WithWeights(WeightsEnums),
    ];
}
