using Cnn.Backbones.Compute;
using Cnn.Backbones.Onnx.Export;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Models;

/// <summary>
/// LeNet-5 as LeCun et al. (1998) designed it: 32×32 input, 5×5 convolutions with 6 and 16 maps, tanh, 2×2 average pooling,
/// then fully connected layers of 120 and 84 units and the classifier (61,706 parameters for 10 classes and 1 channel).
/// 28×28 input (MNIST, Fashion-MNIST) is zero-padded by 2 pixels on each side inside the model, as the paper padded MNIST;
/// any other size is rejected. There are no pretrained weights: the model is trained from scratch.
/// </summary>
/// <remarks>
/// <para>Modules: <c>conv1</c> (C1) → <c>act1</c> → <c>pool1</c> (S2) → <c>conv2</c> (C3) → <c>act2</c> → <c>pool2</c> (S4) →
/// flatten → <c>fc1</c> (C5, 400→120) → <c>act3</c> → <c>fc2</c> (F6, 120→84) → <c>act4</c> → <c>fc3</c> (classifier).
/// The paper's sparse C3 connection table and RBF output are replaced by full connections and a linear layer, as is usual.</para>
/// <para>Feature stages end at each pooling layer: <c>pool1</c> (6 maps, 14×14) and <c>pool2</c> (16 maps, 5×5); their nominal
/// reductions are 2 and 4. The head flattens the 16×5×5 map (no global pooling), so <see cref="Backbone.NumFeatures"/> is 84,
/// the width of F6, which <see cref="Backbone.ForwardHead"/> returns with <c>preLogits</c>.</para>
/// </remarks>
public sealed class LeNet5 : Backbone
{
    /// <summary>Model name in the registry.</summary>
    public const string ModelName = "lenet5";

    private readonly PrecisionConv2d conv1;
    private readonly Tanh act1;
    private readonly AvgPool2d pool1;
    private readonly PrecisionConv2d conv2;
    private readonly Tanh act2;
    private readonly AvgPool2d pool2;
    private readonly PrecisionLinear? fc1;
    private readonly Tanh? act3;
    private readonly PrecisionLinear? fc2;
    private readonly Tanh? act4;
    private nn.Module<Tensor, Tensor>? fc3;

    private static readonly IReadOnlyList<StageGroup> Stages =
    [
        new("conv1", ["conv1."]),
        new("conv2", ["conv2."]),
        new("fc", ["fc1.", "fc2."]),
        new("head", ["fc3."]),
    ];

    /// <summary>Options used when none are given: 10 classes, 1 input channel.</summary>
    public static ModelOptions DefaultOptions { get; } = new() { NumClasses = 10, InChannels = 1 };

    /// <summary>The configuration reported for LeNet-5: 1×32×32 input scaled to [-1, 1] (mean = std = 0.5); no pretrained weights.</summary>
    public static PretrainedConfig Config { get; } = new(
        new InputSize(1, 32, 32), [0.5], [0.5], 1.0, "bilinear", "conv1", "fc3", 10, "none (trained from scratch)");

    /// <summary>Builds LeNet-5 with PyTorch's default initialisation.</summary>
    /// <param name="options">Creation options; null for <see cref="DefaultOptions"/> (10 classes, 1 channel).</param>
    /// <param name="device">Device for the parameters; null for the default (CPU).</param>
    public LeNet5(ModelOptions? options = null, Device? device = null)
        : base(ModelName, options ??= DefaultOptions, 84, [new(6, 2, "pool1"), new(16, 4, "pool2")], Config)
    {
        conv1 = Ops.Conv2d(options.InChannels, 6, 5, device: device);
        act1 = nn.Tanh();
        pool1 = nn.AvgPool2d(2, 2);
        conv2 = Ops.Conv2d(6, 16, 5, device: device);
        act2 = nn.Tanh();
        pool2 = nn.AvgPool2d(2, 2);
        if (!options.FeaturesOnly)
        {
            fc1 = Ops.Linear(16 * 5 * 5, 120, device: device);
            act3 = nn.Tanh();
            fc2 = Ops.Linear(120, 84, device: device);
            act4 = nn.Tanh();
            fc3 = CreateClassifier(options.NumClasses, device);
        }
        RegisterComponents();
    }

    /// <inheritdoc />
    public override IReadOnlyList<StageGroup> StageGroups => Stages;

    /// <summary>28: 28×28 input is padded to 32×32; 32×32 is the native size. Other sizes are rejected.</summary>
    public override int MinInputSize => 28;

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? Classifier { get => fc3; set => fc3 = value; }

    /// <inheritdoc />
    protected override Tensor ForwardStage(int index, Tensor x)
    {
        using var scope = NewDisposeScope();
        switch (index)
        {
            case 0:
                long h = x.shape[2], w = x.shape[3];
                if (!((h == 32 && w == 32) || (h == 28 && w == 28)))
                    throw new ArgumentException($"{ModelName} takes 32×32 input, or 28×28 which it zero-pads by 2 pixels; got {h}×{w}.", nameof(x));
                var input = h == 28 ? nn.functional.pad(x, [2, 2, 2, 2]) : x;
                return pool1.call(act1.call(conv1.call(input))).MoveToOuterDisposeScope();
            case 1:
                return pool2.call(act2.call(conv2.call(x))).MoveToOuterDisposeScope();
            default:
                throw new ArgumentOutOfRangeException(nameof(index), index, "LeNet-5 has feature stages 0..1.");
        }
    }

    /// <inheritdoc/>
    public override bool HeadSplitsAtPreLogits => false;

    /// <inheritdoc />
    private protected override string ExportStage(int index, OnnxExportContext context, string x)
    {
        switch (index)
        {
            case 0:
                context.RequireFixedSize("its fully-connected layers take a 5×5 map, i.e. 32×32 input (or 28×28, padded)");
                long h = context.InputShape[2], w = context.InputShape[3];
                if (!((h == 32 && w == 32) || (h == 28 && w == 28)))
                    throw new NotSupportedException($"{ModelName} takes 32×32 input, or 28×28 which it zero-pads by 2 pixels; cannot export it for {h}×{w}.");
                var input = h == 28 ? context.Op("Pad", [x, context.Builder.Longs(0, 0, 2, 2, 0, 0, 2, 2)]) : x;
                return context.EmitAll(input, [conv1, act1, pool1]);
            case 1:
                return context.EmitAll(x, [conv2, act2, pool2]);
            default:
                throw new ArgumentOutOfRangeException(nameof(index), index, "LeNet-5 has feature stages 0..1.");
        }
    }

    /// <inheritdoc />
    private protected override string ExportHead(OnnxExportContext context, string features) =>
        context.EmitAll(context.Flatten(features), [fc1!, act3!, fc2!, act4!, GetClassifier()]);

    /// <summary>Flatten the 16×5×5 map, C5 and F6 with tanh, dropout (if <see cref="Backbone.DropRate"/> &gt; 0), then the classifier.</summary>
    /// <param name="x">The [N, 16, 5, 5] map from <see cref="Backbone.ForwardFeatures"/>.</param>
    /// <param name="preLogits">Return F6's 84-wide output instead of logits.</param>
    protected override Tensor ForwardHeadCore(Tensor x, bool preLogits)
    {
        var classifier = GetClassifier();
        using var scope = NewDisposeScope();
        var h = act4!.call(fc2!.call(act3!.call(fc1!.call(x.flatten(1)))));
        if (DropRate > 0) h = nn.functional.dropout(h, DropRate, training);
        return (preLogits ? h : classifier.call(h)).MoveToOuterDisposeScope();
    }
}

/// <summary>Registers <c>lenet5</c> (defaults: 10 classes, 1 input channel).</summary>
public sealed class LeNetFamily : IModelFamily
{
    /// <summary>Family name used in <see cref="ModelInfo.Family"/>.</summary>
    public const string Family = "lenet";

    /// <inheritdoc />
    public IEnumerable<ModelDefinition> Models =>
    [
        new(LeNet5.ModelName, Family, LeNet5.Config, (options, device) => new LeNet5(options, device), LeNet5.DefaultOptions),
    ];
}
