using Cnn.Backbones.Compute;
using Cnn.Backbones.Onnx.Export;
using Cnn.Backbones.Weights.Catalog;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Models;

/// <summary>
/// torchvision's AlexNet (the one-GPU variant of Krizhevsky's "one weird trick" paper: 64/192/384/256/256 channels,
/// <c>AdaptiveAvgPool2d(6)</c>, a dropout MLP head; 61,100,840 parameters). Keys, order and shapes equal torchvision 0.14's:
/// <c>features.{0,3,6,8,10}</c>, <c>classifier.{1,4,6}</c>.
/// </summary>
/// <remarks>
/// <para>Feature stages end just before each max pooling (timm's convention), plus the final pooled map that
/// <see cref="Backbone.ForwardFeatures"/> returns: <c>features.1</c> (64, reduction 4), <c>features.4</c> (192, 8),
/// <c>features.11</c> (256, 16), <c>features.12</c> (256, 32).</para>
/// <para>The head is torchvision's: adaptive average pool to 6×6, flatten, then <c>classifier</c> (dropout, 9216→4096, ReLU,
/// dropout, 4096→4096, ReLU, 4096→classes). <see cref="Backbone.NumFeatures"/> is 4096, the input of the last layer
/// <c>classifier.6</c>, which <see cref="Backbone.ResetClassifier"/> replaces; <c>preLogits</c> returns that 4096 vector.
/// The dropout probability is torchvision's 0.5 unless <see cref="ModelOptions.DropRate"/> is set.</para>
/// </remarks>
public sealed class AlexNet : Backbone
{
    /// <summary>Model name in the registry.</summary>
    public const string ModelName = "alexnet";

    private readonly IndexedSequence features;
    private readonly AdaptiveAvgPool2d? avgpool;
    private readonly IndexedSequence? classifier;

    /// <summary>Layer ranges [start, end) of <c>features</c> for each feature stage.</summary>
    private static readonly (int Start, int End)[] StageRanges = [(0, 2), (2, 5), (5, 12), (12, 13)];

    /// <summary>torchvision IMAGENET1K_V1: resize 256, crop 224, ImageNet mean/std, bilinear.</summary>
    public static PretrainedConfig Config { get; } =
        PretrainedConfig.TorchvisionImageNet(224, 256, "features.0", "classifier.6", "torchvision IMAGENET1K_V1");

    /// <summary>Builds AlexNet with PyTorch's default initialisation (as torchvision does).</summary>
    /// <param name="options">Creation options.</param>
    /// <param name="device">Device for the parameters; null for the default (CPU). The meta device builds without memory.</param>
    public AlexNet(ModelOptions? options = null, Device? device = null)
        : base(ModelName, ClassicLayers.WithHeadDropout(options ?? new ModelOptions(), 0.5), 4096,
            [new(64, 4, "features.1"), new(192, 8, "features.4"), new(256, 16, "features.11"), new(256, 32, "features.12")], Config)
    {
        options ??= new ModelOptions();
        features = new IndexedSequence(
        [
            Ops.Conv2d(options.InChannels, 64, 11, stride: 4, padding: 2, device: device), nn.ReLU(), nn.MaxPool2d(3, 2),
            Ops.Conv2d(64, 192, 5, padding: 2, device: device), nn.ReLU(), nn.MaxPool2d(3, 2),
            Ops.Conv2d(192, 384, 3, padding: 1, device: device), nn.ReLU(),
            Ops.Conv2d(384, 256, 3, padding: 1, device: device), nn.ReLU(),
            Ops.Conv2d(256, 256, 3, padding: 1, device: device), nn.ReLU(), nn.MaxPool2d(3, 2),
        ]);
        if (!options.FeaturesOnly)
        {
            avgpool = nn.AdaptiveAvgPool2d(6);
            classifier = new IndexedSequence(
            [
                nn.Dropout(DropRate), Ops.Linear(256 * 6 * 6, 4096, device: device), nn.ReLU(),
                nn.Dropout(DropRate), Ops.Linear(4096, 4096, device: device), nn.ReLU(),
                CreateClassifier(options.NumClasses, device),
            ]);
        }
        RegisterComponents();
    }

    /// <summary>63: torchvision's <c>min_size</c> for AlexNet.</summary>
    public override int MinInputSize => 63;

    /// <inheritdoc />
    public override IReadOnlyList<StageGroup> StageGroups =>
    [
        new("stage0", ["features.0."]),
        new("stage1", ["features.3."]),
        new("stage2", ["features.6.", "features.8.", "features.10."]),
        new("pre_logits", ["classifier.1.", "classifier.4."]),
        new("head", ["classifier.6."]),
    ];

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
        if (index < 0 || index >= StageRanges.Length)
            throw new ArgumentOutOfRangeException(nameof(index), index, "AlexNet has feature stages 0..3.");
        return features.Run(x, StageRanges[index].Start, StageRanges[index].End);
    }

    /// <inheritdoc/>
    public override bool HeadSplitsAtPreLogits => false;

    /// <inheritdoc />
    private protected override string ExportStage(int index, OnnxExportContext context, string x) =>
        features.Export(context, x, StageRanges[index].Start, StageRanges[index].End);

    /// <inheritdoc />
    private protected override string ExportHead(OnnxExportContext context, string features) =>
        ClassicLayers.ExportPooledHead(context, avgpool!, classifier!, features);

    /// <summary>Adaptive average pool to 6×6, flatten, then <c>classifier</c>.</summary>
    /// <param name="x">The last feature map [N, 256, h, w].</param>
    /// <param name="preLogits">Return the 4096-wide input of <c>classifier.6</c> instead of logits.</param>
    protected override Tensor ForwardHeadCore(Tensor x, bool preLogits)
    {
        var head = GetClassifier();
        using var scope = NewDisposeScope();
        var h = classifier!.Run(avgpool!.call(x).flatten(1), 0, 6);
        return (preLogits ? h : head.call(h)).MoveToOuterDisposeScope();
    }
}

/// <summary>Registers torchvision's <c>alexnet</c>.</summary>
public sealed partial class AlexNetFamily : IModelFamily
{
    /// <summary>Family name used in <see cref="ModelInfo.Family"/>.</summary>
    public const string Family = "alexnet";

    /// <summary>Auto: what the family measured faster on a CPU with native bfloat16 (docs/performance.md).</summary>
    public AutoCompute AutoCompute => AutoCompute.BFloat16ChannelsLastInBFloat16;

    /// <inheritdoc />
    public IEnumerable<ModelDefinition> Models =>
        [new ModelDefinition(AlexNet.ModelName, Family, AlexNet.Config, (options, device) => new AlexNet(options, device)).WithWeights(WeightsEnums)];
}
