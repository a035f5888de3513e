using Cnn.Backbones.Compute;
using Cnn.Backbones.Onnx.Export;
using Cnn.Backbones.Weights.Catalog;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Models;

/// <summary>
/// torchvision's GoogLeNet (Inception v1): <see cref="BasicConv2d"/> units (bias-free conv, BatchNorm eps 0.001, ReLU), nine
/// Inception blocks, optional auxiliary classifiers <c>aux1</c> (after <c>inception4a</c>) and <c>aux2</c> (after
/// <c>inception4d</c>), average pool, dropout 0.2 and <c>fc</c>. Keys, order and shapes equal torchvision 0.14's, with or
/// without <c>aux1.*</c>/<c>aux2.*</c> (6,624,904 parameters without them).
/// </summary>
/// <remarks>
/// <para>As in torchvision, the Inception blocks' "5×5" branch (<c>branch3</c>) uses a 3×3 convolution.</para>
/// <para><see cref="ModelOptions.AuxLogits"/> (default off, as torchvision's pretrained model) builds the auxiliary heads; they
/// run only in training mode, through <see cref="Backbone.ForwardTrain"/>, each with loss weight <see cref="ModelOptions.AuxLossWeight"/>
/// (default 0.3, torchvision's reference recipe). <c>forward</c> always returns the main logits only.
/// <see cref="Backbone.ResetClassifier"/> replaces <c>fc</c> and the auxiliary heads' last layers (<c>aux1.fc2</c>,
/// <c>aux2.fc2</c>) alike, and <see cref="Backbone.LoadPretrained"/> keeps all three fresh when the file's class count differs.
/// Loading a checkpoint with <c>aux1.*</c>/<c>aux2.*</c> into a model built without them drops those entries, as torchvision does.</para>
/// <para><see cref="ModelOptions.TransformInput"/> (default true for 3 channels) re-normalises ImageNet-normalised input to
/// mean = std = 0.5, as torchvision does for its pretrained weights.</para>
/// <para>Feature stages end just before each downsampling (timm's convention): <c>conv1</c> (64, reduction 2), <c>conv3</c>
/// (192, 4), <c>inception3b</c> (480, 8), <c>inception4e</c> (832, 16), <c>inception5b</c> (1024, 32).</para>
/// </remarks>
public sealed class GoogLeNet : Backbone
{
    /// <summary>Model name in the registry.</summary>
    public const string ModelName = "googlenet";

    /// <summary>Loss weight of each auxiliary head in torchvision's reference training recipe.</summary>
    public const double DefaultAuxLossWeight = 0.3;

    private readonly BasicConv2d conv1;
    private readonly MaxPool2d maxpool1;
    private readonly BasicConv2d conv2;
    private readonly BasicConv2d conv3;
    private readonly MaxPool2d maxpool2;
    private readonly InceptionBlock inception3a;
    private readonly InceptionBlock inception3b;
    private readonly MaxPool2d maxpool3;
    private readonly InceptionBlock inception4a;
    private readonly InceptionBlock inception4b;
    private readonly InceptionBlock inception4c;
    private readonly InceptionBlock inception4d;
    private readonly InceptionBlock inception4e;
    private readonly MaxPool2d maxpool4;
    private readonly InceptionBlock inception5a;
    private readonly InceptionBlock inception5b;
    private readonly GoogLeNetAux? aux1;
    private readonly GoogLeNetAux? aux2;
    private nn.Module<Tensor, Tensor>? fc;

    private static readonly IReadOnlyList<StageGroup> Stages =
    [
        new("stage0", ["conv1."]),
        new("stage1", ["conv2.", "conv3."]),
        new("stage2", ["inception3a.", "inception3b."]),
        new("stage3", ["inception4a.", "inception4b.", "inception4c.", "inception4d.", "inception4e."]),
        new("stage4", ["inception5a.", "inception5b."]),
        new("head", ["aux1.", "aux2.", "fc."]),
    ];

    /// <summary>torchvision IMAGENET1K_V1: resize 256, crop 224, ImageNet mean/std, bilinear.</summary>
    public static PretrainedConfig Config { get; } =
        PretrainedConfig.TorchvisionImageNet(224, 256, "conv1.conv", "fc", "torchvision IMAGENET1K_V1");

    /// <summary>Builds GoogLeNet with torchvision's initialisation (truncated N(0, 0.01) weights, BatchNorm 1/0).</summary>
    /// <param name="options">Creation options (also <see cref="ModelOptions.AuxLogits"/>, <see cref="ModelOptions.AuxLossWeight"/>,
    /// <see cref="ModelOptions.TransformInput"/>).</param>
    /// <param name="device">Device for the parameters; null for the default (CPU). The meta device builds without memory.</param>
    public GoogLeNet(ModelOptions? options = null, Device? device = null)
        : base(ModelName, ClassicLayers.WithHeadDropout(options ?? new ModelOptions(), 0.2), 1024,
            [new(64, 2, "conv1"), new(192, 4, "conv3"), new(480, 8, "inception3b"), new(832, 16, "inception4e"), new(1024, 32, "inception5b")], Config)
    {
        options ??= new ModelOptions();
        TransformInput = options.TransformInput ?? options.InChannels == 3;
        AuxLossWeight = options.AuxLossWeight ?? DefaultAuxLossWeight;

        conv1 = new BasicConv2d(options.InChannels, 64, 7, stride: 2, padding: 3, device: device);
        maxpool1 = nn.MaxPool2d(3, 2, ceil_mode: true);
        conv2 = new BasicConv2d(64, 64, 1, device: device);
        conv3 = new BasicConv2d(64, 192, 3, padding: 1, device: device);
        maxpool2 = nn.MaxPool2d(3, 2, ceil_mode: true);
        inception3a = new InceptionBlock(192, 64, 96, 128, 16, 32, 32, device);
        inception3b = new InceptionBlock(256, 128, 128, 192, 32, 96, 64, device);
        maxpool3 = nn.MaxPool2d(3, 2, ceil_mode: true);
        inception4a = new InceptionBlock(480, 192, 96, 208, 16, 48, 64, device);
        inception4b = new InceptionBlock(512, 160, 112, 224, 24, 64, 64, device);
        inception4c = new InceptionBlock(512, 128, 128, 256, 24, 64, 64, device);
        inception4d = new InceptionBlock(512, 112, 144, 288, 32, 64, 64, device);
        inception4e = new InceptionBlock(528, 256, 160, 320, 32, 128, 128, device);
        maxpool4 = nn.MaxPool2d(2, 2, ceil_mode: true);
        inception5a = new InceptionBlock(832, 256, 160, 320, 32, 128, 128, device);
        inception5b = new InceptionBlock(832, 384, 192, 384, 48, 128, 128, device);
        if (!options.FeaturesOnly)
        {
            if (options.AuxLogits == true)
            {
                aux1 = new GoogLeNetAux(512, options.NumClasses, device);
                aux2 = new GoogLeNetAux(528, options.NumClasses, device);
            }
            fc = CreateClassifier(options.NumClasses, device);
        }
        RegisterComponents();
        InitializeWeights();
    }

    /// <summary>Whether the input is re-normalised from ImageNet statistics to mean = std = 0.5 (torchvision's <c>transform_input</c>).</summary>
    public bool TransformInput { get; }

    /// <summary>Whether the auxiliary classifiers <c>aux1</c> and <c>aux2</c> exist (torchvision's <c>aux_logits</c>).</summary>
    public bool AuxLogits => aux1 is not null;

    /// <summary>Loss weight of each auxiliary output of <see cref="Backbone.ForwardTrain"/>.</summary>
    public double AuxLossWeight { get; }

    /// <summary>15: torchvision's <c>min_size</c> for GoogLeNet.</summary>
    public override int MinInputSize => 15;

    /// <inheritdoc />
    public override IReadOnlyList<StageGroup> StageGroups => Stages;

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? Classifier { get => fc; set => fc = value; }

    /// <inheritdoc />
    protected override IEnumerable<string> ClassifierPrefixes => ["fc.", "aux1.fc2.", "aux2.fc2."];

    /// <inheritdoc />
    protected override Tensor ForwardStage(int index, Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor result = index switch
        {
            0 => conv1.call(TransformInput ? ClassicLayers.TransformInput(x) : x),
            1 => conv3.call(conv2.call(maxpool1.call(x))),
            2 => inception3b.call(inception3a.call(maxpool2.call(x))),
            3 => inception4e.call(inception4d.call(inception4c.call(inception4b.call(inception4a.call(maxpool3.call(x)))))),
            4 => inception5b.call(inception5a.call(maxpool4.call(x))),
            _ => throw new ArgumentOutOfRangeException(nameof(index), index, "GoogLeNet has feature stages 0..4."),
        };
        return result.MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override bool HasAuxiliaryHeads => aux1 is not null;

    /// <summary>
    /// The logits plus, in training mode with <see cref="AuxLogits"/> and at least one class, the outputs of <c>aux1</c> and
    /// <c>aux2</c> (in that order), each weighted <see cref="AuxLossWeight"/>. In eval mode this equals <c>forward</c> with no
    /// auxiliaries.
    /// </summary>
    /// <param name="x">Input batch [N, C, H, W] with C = <see cref="Backbone.InChannels"/>.</param>
    protected override TrainingOutput ForwardTrainCore(Tensor x)
    {
        if (!training || aux1 is null || aux2 is null || NumClasses == 0) return base.ForwardTrainCore(x);
        ValidateInput(x);
        using var scope = NewDisposeScope();
        var h = ForwardStage(2, ForwardStage(1, ForwardStage(0, x)));
        h = inception4a.call(maxpool3.call(h));
        var a1 = aux1.call(h);
        h = inception4d.call(inception4c.call(inception4b.call(h)));
        var a2 = aux2.call(h);
        h = ForwardStage(4, inception4e.call(h));
        var logits = ForwardHead(h);
        return new TrainingOutput(logits.MoveToOuterDisposeScope(),
            [new AuxiliaryOutput(a1.MoveToOuterDisposeScope(), AuxLossWeight), new AuxiliaryOutput(a2.MoveToOuterDisposeScope(), AuxLossWeight)]);
    }

    /// <inheritdoc />
    protected override void ResetAuxiliaryClassifiers(int numClasses, Device? device)
    {
        aux1?.ResetClassifier(numClasses, device);
        aux2?.ResetClassifier(numClasses, device);
    }

    /// <summary>Drops <c>aux1.*</c>/<c>aux2.*</c> entries when the model has no auxiliary heads (torchvision does the same).</summary>
    /// <param name="weights">The file's entries (a private copy).</param>
    protected override void RemapWeights(Cnn.Backbones.Weights.StateDict weights)
    {
        if (aux1 is null)
            weights.Rename(k => k.StartsWith("aux1.", StringComparison.Ordinal) || k.StartsWith("aux2.", StringComparison.Ordinal) ? null : k);
    }

    /// <inheritdoc />
    private protected override string ExportStage(int index, OnnxExportContext context, string x) => index switch
    {
        0 => context.Emit(conv1, TransformInput ? ClassicLayers.ExportTransformInput(context, x) : x),
        1 => context.EmitAll(x, [maxpool1, conv2, conv3]),
        2 => context.EmitAll(x, [maxpool2, inception3a, inception3b]),
        3 => context.EmitAll(x, [maxpool3, inception4a, inception4b, inception4c, inception4d, inception4e]),
        4 => context.EmitAll(x, [maxpool4, inception5a, inception5b]),
        _ => throw new ArgumentOutOfRangeException(nameof(index), index, "GoogLeNet has feature stages 0..4."),
    };

    private void InitializeWeights()
    {
        using var noGrad = no_grad();
        foreach (var (_, module) in named_modules())
        {
            switch (module)
            {
                case PrecisionConv2d conv:
                    Layers.TruncatedNormal(conv.weight, 0, 0.01, -2, 2);
                    break;
                case PrecisionLinear linear:
                    Layers.TruncatedNormal(linear.weight, 0, 0.01, -2, 2);
                    break;
                case FoldableBatchNorm2d bn:
                    nn.init.ones_(bn.weight);
                    nn.init.zeros_(bn.bias);
                    break;
            }
        }
    }

    /// <summary>torchvision's <c>Inception</c> block: 1×1, 1×1→3×3, 1×1→3×3 (the paper's 5×5), and 3×3 max pool→1×1 branches, concatenated.</summary>
    private sealed class InceptionBlock : nn.Module<Tensor, Tensor>, IOnnxExportable
    {
        private readonly BasicConv2d branch1;
        private readonly IndexedSequence branch2;
        private readonly IndexedSequence branch3;
        private readonly IndexedSequence branch4;

        public InceptionBlock(int inChannels, int ch1x1, int ch3x3red, int ch3x3, int ch5x5red, int ch5x5, int poolProj, Device? device)
            : base("Inception")
        {
            branch1 = new BasicConv2d(inChannels, ch1x1, 1, device: device);
            branch2 = new IndexedSequence([new BasicConv2d(inChannels, ch3x3red, 1, device: device), new BasicConv2d(ch3x3red, ch3x3, 3, padding: 1, device: device)]);
            branch3 = new IndexedSequence([new BasicConv2d(inChannels, ch5x5red, 1, device: device), new BasicConv2d(ch5x5red, ch5x5, 3, padding: 1, device: device)]);
            branch4 = new IndexedSequence([nn.MaxPool2d(3, 1, 1, ceil_mode: true), new BasicConv2d(inChannels, poolProj, 1, device: device)]);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            return cat([branch1.call(x), branch2.call(x), branch3.call(x), branch4.call(x)], 1).MoveToOuterDisposeScope();
        }

        public string ExportOnnx(OnnxExportContext context, string input) =>
            context.Concat(1, context.Emit(branch1, input), context.Emit(branch2, input), context.Emit(branch3, input), context.Emit(branch4, input));
    }
}

/// <summary>
/// torchvision's GoogLeNet <c>InceptionAux</c>: adaptive average pool to 4×4, <c>conv</c> (1×1 to 128), flatten, <c>fc1</c>
/// (2048→1024) with ReLU, dropout 0.7, <c>fc2</c> (1024→classes).
/// </summary>
internal sealed class GoogLeNetAux : nn.Module<Tensor, Tensor>
{
    private readonly BasicConv2d conv;
    private readonly PrecisionLinear fc1;
    private nn.Module<Tensor, Tensor> fc2;
    private readonly Dropout dropout;

    public GoogLeNetAux(int inChannels, int numClasses, Device? device) : base("InceptionAux")
    {
        conv = new BasicConv2d(inChannels, 128, 1, device: device);
        fc1 = Ops.Linear(2048, 1024, device: device);
        fc2 = CreateFc(numClasses, device);
        dropout = nn.Dropout(0.7);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = conv.call(nn.functional.adaptive_avg_pool2d(x, [4, 4])).flatten(1);
        h = dropout.call(nn.functional.relu(fc1.call(h)));
        return fc2.call(h).MoveToOuterDisposeScope();
    }

    /// <summary>Replaces <c>fc2</c> with a fresh layer for <paramref name="numClasses"/> classes (identity for 0).</summary>
    public void ResetClassifier(int numClasses, Device? device)
    {
        var old = fc2;
        fc2 = CreateFc(numClasses, device);
        register_module("fc2", null!);
        register_module("fc2", fc2);
        old.Dispose();
    }

    private static nn.Module<Tensor, Tensor> CreateFc(int numClasses, Device? device)
    {
        if (numClasses == 0) return nn.Identity();
        var fc = Ops.Linear(1024, numClasses, device: device);
        using var noGrad = no_grad();
        Layers.TruncatedNormal(fc.weight, 0, 0.01, -2, 2);
        return fc;
    }
}

/// <summary>Registers torchvision's <c>googlenet</c>.</summary>
public sealed partial class GoogLeNetFamily : IModelFamily
{
    /// <summary>Family name used in <see cref="ModelInfo.Family"/>.</summary>
    public const string Family = "googlenet";

    /// <summary>Auto: what the family measured faster on a CPU with native bfloat16 (docs/performance.md).</summary>
    public AutoCompute AutoCompute => AutoCompute.BFloat16ChannelsLastInBFloat16;

    /// <inheritdoc />
    public IEnumerable<ModelDefinition> Models =>
        [new ModelDefinition(GoogLeNet.ModelName, Family, GoogLeNet.Config, (options, device) => new GoogLeNet(options, device))
        {
            Capabilities = ModelCapabilities.Cnn with { AuxLogits = true, TransformInput = true },
        }.WithWeights(WeightsEnums)];
}
