using Cnn.Backbones.Compute;
using Cnn.Backbones.Onnx.Export;
using Cnn.Backbones.Weights.Catalog;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Models;

/// <summary>
/// torchvision's Inception v3 (299×299 input): <see cref="BasicConv2d"/> units with BatchNorm eps 0.001, Inception A–E blocks
/// <c>Mixed_5b</c>..<c>Mixed_7c</c>, the auxiliary classifier <c>AuxLogits</c> on <c>Mixed_6e</c>, average pool, dropout 0.5 and
/// <c>fc</c>. Keys, order and shapes equal torchvision 0.14's (27,161,264 parameters with the auxiliary head).
/// </summary>
/// <remarks>
/// <para><see cref="ModelOptions.AuxLogits"/> (default on, as torchvision's pretrained model) builds <c>AuxLogits</c>; it runs
/// only in training mode through <see cref="Backbone.ForwardTrain"/>, with loss weight <see cref="ModelOptions.AuxLossWeight"/> (default
/// 0.4, torchvision's reference recipe), and needs an input of at least <see cref="MinAuxInputSize"/> pixels (its 5×5 pooling and
/// 5×5 convolution need a 17×17 <c>Mixed_6e</c> map). <c>forward</c> always returns the main logits only.
/// <see cref="Backbone.ResetClassifier"/> replaces <c>fc</c> and <c>AuxLogits.fc</c> alike; <see cref="Backbone.LoadPretrained"/>
/// keeps both fresh when the file's class count differs; a checkpoint's <c>AuxLogits.*</c> entries are dropped when the model
/// was built without the head.</para>
/// <para><see cref="ModelOptions.TransformInput"/> (default true for 3 channels) re-normalises ImageNet-normalised input to
/// mean = std = 0.5, as torchvision does for its pretrained weights.</para>
/// <para>Feature stages are timm's: <c>Conv2d_2b_3x3</c> (64, reduction 2), <c>Conv2d_4a_3x3</c> (192, 4), <c>Mixed_5d</c>
/// (288, 8), <c>Mixed_6e</c> (768, 16), <c>Mixed_7c</c> (2048, 32). Inputs smaller than 75×75 (torchvision's
/// <c>min_size</c>) are rejected.</para>
/// </remarks>
public sealed class InceptionV3 : Backbone
{
    /// <summary>Model name in the registry.</summary>
    public const string ModelName = "inception_v3";

    /// <summary>Loss weight of the auxiliary head in torchvision's reference training recipe.</summary>
    public const double DefaultAuxLossWeight = 0.4;

    /// <summary>Smallest input for which the auxiliary head works (its <c>Mixed_6e</c> map must be at least 17×17).</summary>
    public const int MinAuxInputSize = 299; // 298 gives a 16×16 Mixed_6e map; the tests check this against torchvision

    private readonly BasicConv2d Conv2d_1a_3x3;
    private readonly BasicConv2d Conv2d_2a_3x3;
    private readonly BasicConv2d Conv2d_2b_3x3;
    private readonly MaxPool2d maxpool1;
    private readonly BasicConv2d Conv2d_3b_1x1;
    private readonly BasicConv2d Conv2d_4a_3x3;
    private readonly MaxPool2d maxpool2;
    private readonly InceptionA Mixed_5b;
    private readonly InceptionA Mixed_5c;
    private readonly InceptionA Mixed_5d;
    private readonly InceptionB Mixed_6a;
    private readonly InceptionC Mixed_6b;
    private readonly InceptionC Mixed_6c;
    private readonly InceptionC Mixed_6d;
    private readonly InceptionC Mixed_6e;
    private readonly InceptionV3Aux? AuxLogits;
    private readonly InceptionD Mixed_7a;
    private readonly InceptionE Mixed_7b;
    private readonly InceptionE Mixed_7c;
    private nn.Module<Tensor, Tensor>? fc;

    private static readonly IReadOnlyList<StageGroup> Stages =
    [
        new("stage0", ["Conv2d_1a_3x3.", "Conv2d_2a_3x3.", "Conv2d_2b_3x3."]),
        new("stage1", ["Conv2d_3b_1x1.", "Conv2d_4a_3x3."]),
        new("stage2", ["Mixed_5b.", "Mixed_5c.", "Mixed_5d."]),
        new("stage3", ["Mixed_6a.", "Mixed_6b.", "Mixed_6c.", "Mixed_6d.", "Mixed_6e."]),
        new("stage4", ["Mixed_7a.", "Mixed_7b.", "Mixed_7c."]),
        new("head", ["AuxLogits.", "fc."]),
    ];

    /// <summary>torchvision IMAGENET1K_V1: resize 342, crop 299, ImageNet mean/std, bilinear.</summary>
    public static PretrainedConfig Config { get; } =
        PretrainedConfig.TorchvisionImageNet(299, 342, "Conv2d_1a_3x3.conv", "fc", "torchvision IMAGENET1K_V1");

    /// <summary>Builds Inception v3 with torchvision's initialisation (truncated N(0, 0.1) weights, N(0, 0.001) for the aux
    /// classifier, BatchNorm 1/0).</summary>
    /// <param name="options">Creation options (also <see cref="ModelOptions.AuxLogits"/>, <see cref="ModelOptions.AuxLossWeight"/>,
    /// <see cref="ModelOptions.TransformInput"/>).</param>
    /// <param name="device">Device for the parameters; null for the default (CPU). The meta device builds without memory.</param>
    public InceptionV3(ModelOptions? options = null, Device? device = null)
        : base(ModelName, ClassicLayers.WithHeadDropout(options ?? new ModelOptions(), 0.5), 2048,
            [new(64, 2, "Conv2d_2b_3x3"), new(192, 4, "Conv2d_4a_3x3"), new(288, 8, "Mixed_5d"), new(768, 16, "Mixed_6e"), new(2048, 32, "Mixed_7c")], Config)
    {
        options ??= new ModelOptions();
        TransformInput = options.TransformInput ?? options.InChannels == 3;
        AuxLossWeight = options.AuxLossWeight ?? DefaultAuxLossWeight;

        Conv2d_1a_3x3 = new BasicConv2d(options.InChannels, 32, 3, stride: 2, device: device);
        Conv2d_2a_3x3 = new BasicConv2d(32, 32, 3, device: device);
        Conv2d_2b_3x3 = new BasicConv2d(32, 64, 3, padding: 1, device: device);
        maxpool1 = nn.MaxPool2d(3, 2);
        Conv2d_3b_1x1 = new BasicConv2d(64, 80, 1, device: device);
        Conv2d_4a_3x3 = new BasicConv2d(80, 192, 3, device: device);
        maxpool2 = nn.MaxPool2d(3, 2);
        Mixed_5b = new InceptionA(192, 32, device);
        Mixed_5c = new InceptionA(256, 64, device);
        Mixed_5d = new InceptionA(288, 64, device);
        Mixed_6a = new InceptionB(288, device);
        Mixed_6b = new InceptionC(768, 128, device);
        Mixed_6c = new InceptionC(768, 160, device);
        Mixed_6d = new InceptionC(768, 160, device);
        Mixed_6e = new InceptionC(768, 192, device);
        if (!options.FeaturesOnly && (options.AuxLogits ?? true)) AuxLogits = new InceptionV3Aux(768, options.NumClasses, device);
        Mixed_7a = new InceptionD(768, device);
        Mixed_7b = new InceptionE(1280, device);
        Mixed_7c = new InceptionE(2048, device);
        if (!options.FeaturesOnly) fc = CreateClassifier(options.NumClasses, device);
        RegisterComponents();
        InitializeWeights();
    }

    /// <summary>Whether the input is re-normalised from ImageNet statistics to mean = std = 0.5 (torchvision's <c>transform_input</c>).</summary>
    public bool TransformInput { get; }

    /// <summary>Whether the auxiliary classifier <c>AuxLogits</c> exists (torchvision's <c>aux_logits</c>).</summary>
    public bool AuxLogitsEnabled => AuxLogits is not null;

    /// <summary>Loss weight of the auxiliary output of <see cref="Backbone.ForwardTrain"/>.</summary>
    public double AuxLossWeight { get; }

    /// <summary>75: torchvision's <c>min_size</c> for Inception v3.</summary>
    public override int MinInputSize => 75;

    /// <inheritdoc />
    public override IReadOnlyList<StageGroup> StageGroups => Stages;

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? Classifier { get => fc; set => fc = value; }

    /// <inheritdoc />
    protected override IEnumerable<string> ClassifierPrefixes => ["fc.", "AuxLogits.fc."];

    /// <inheritdoc />
    protected override Tensor ForwardStage(int index, Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor result = index switch
        {
            0 => Conv2d_2b_3x3.call(Conv2d_2a_3x3.call(Conv2d_1a_3x3.call(TransformInput ? ClassicLayers.TransformInput(x) : x))),
            1 => Conv2d_4a_3x3.call(Conv2d_3b_1x1.call(maxpool1.call(x))),
            2 => Mixed_5d.call(Mixed_5c.call(Mixed_5b.call(maxpool2.call(x)))),
            3 => Mixed_6e.call(Mixed_6d.call(Mixed_6c.call(Mixed_6b.call(Mixed_6a.call(x))))),
            4 => Mixed_7c.call(Mixed_7b.call(Mixed_7a.call(x))),
            _ => throw new ArgumentOutOfRangeException(nameof(index), index, "Inception v3 has feature stages 0..4."),
        };
        return result.MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override bool HasAuxiliaryHeads => AuxLogits is not null;

    /// <summary>
    /// The logits plus, in training mode with <c>AuxLogits</c> and at least one class, the auxiliary logits computed from
    /// <c>Mixed_6e</c>, weighted <see cref="AuxLossWeight"/>. In eval mode this equals <c>forward</c> with no auxiliaries.
    /// </summary>
    /// <param name="x">Input batch [N, C, H, W], at least <see cref="MinAuxInputSize"/> pixels when the auxiliary head runs.</param>
    /// <exception cref="ArgumentException">The input is too small for the auxiliary head.</exception>
    protected override TrainingOutput ForwardTrainCore(Tensor x)
    {
        if (!training || AuxLogits is null || NumClasses == 0) return base.ForwardTrainCore(x);
        ValidateInput(x);
        using var scope = NewDisposeScope();
        var mixed6e = ForwardStage(3, ForwardStage(2, ForwardStage(1, ForwardStage(0, x))));
        if (mixed6e.shape[2] < 17 || mixed6e.shape[3] < 17)
            throw new ArgumentException(
                $"{ModelName}'s auxiliary classifier needs a Mixed_6e map of at least 17×17, i.e. input of at least {MinAuxInputSize}×{MinAuxInputSize} " +
                $"(got {x.shape[2]}×{x.shape[3]}, map {mixed6e.shape[2]}×{mixed6e.shape[3]}); train at 299×299 or build with AuxLogits = false.", nameof(x));
        var aux = AuxLogits.call(mixed6e);
        var logits = ForwardHead(ForwardStage(4, mixed6e));
        return new TrainingOutput(logits.MoveToOuterDisposeScope(), [new AuxiliaryOutput(aux.MoveToOuterDisposeScope(), AuxLossWeight)]);
    }

    /// <inheritdoc />
    protected override void ResetAuxiliaryClassifiers(int numClasses, Device? device) => AuxLogits?.ResetClassifier(numClasses, device);

    /// <summary>Drops <c>AuxLogits.*</c> entries when the model has no auxiliary head (torchvision's pretrained loader does the same).</summary>
    /// <param name="weights">The file's entries (a private copy).</param>
    protected override void RemapWeights(Cnn.Backbones.Weights.StateDict weights)
    {
        if (AuxLogits is null) weights.Rename(k => k.StartsWith("AuxLogits.", StringComparison.Ordinal) ? null : k);
    }

    /// <inheritdoc />
    private protected override string ExportStage(int index, OnnxExportContext context, string x) => index switch
    {
        0 => context.EmitAll(TransformInput ? ClassicLayers.ExportTransformInput(context, x) : x, [Conv2d_1a_3x3, Conv2d_2a_3x3, Conv2d_2b_3x3]),
        1 => context.EmitAll(x, [maxpool1, Conv2d_3b_1x1, Conv2d_4a_3x3]),
        2 => context.EmitAll(x, [maxpool2, Mixed_5b, Mixed_5c, Mixed_5d]),
        3 => context.EmitAll(x, [Mixed_6a, Mixed_6b, Mixed_6c, Mixed_6d, Mixed_6e]),
        4 => context.EmitAll(x, [Mixed_7a, Mixed_7b, Mixed_7c]),
        _ => throw new ArgumentOutOfRangeException(nameof(index), index, "Inception v3 has feature stages 0..4."),
    };

    // avg_pool2d(x, 3, 1, 1) of the Inception blocks' pool branches (torch counts the padding).
    private static string PoolBranch(OnnxExportContext context, string x) => context.AveragePool(x, 3, 1, 1);

    private void InitializeWeights()
    {
        using var noGrad = no_grad();
        foreach (var (name, module) in named_modules())
        {
            switch (module)
            {
                case PrecisionConv2d conv:
                    Layers.TruncatedNormal(conv.weight, 0, 0.1, -2, 2);
                    break;
                case PrecisionLinear linear:
                    Layers.TruncatedNormal(linear.weight, 0, name == "AuxLogits.fc" ? 0.001 : 0.1, -2, 2);
                    break;
                case FoldableBatchNorm2d bn:
                    nn.init.ones_(bn.weight);
                    nn.init.zeros_(bn.bias);
                    break;
            }
        }
    }

    private static Tensor Cat(params Tensor[] parts) => cat(parts, 1);

    private sealed class InceptionA : nn.Module<Tensor, Tensor>, IOnnxExportable
    {
        private readonly BasicConv2d branch1x1, branch5x5_1, branch5x5_2, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3, branch_pool;

        public InceptionA(int inChannels, int poolFeatures, Device? device) : base(nameof(InceptionA))
        {
            branch1x1 = new BasicConv2d(inChannels, 64, 1, device: device);
            branch5x5_1 = new BasicConv2d(inChannels, 48, 1, device: device);
            branch5x5_2 = new BasicConv2d(48, 64, 5, padding: 2, device: device);
            branch3x3dbl_1 = new BasicConv2d(inChannels, 64, 1, device: device);
            branch3x3dbl_2 = new BasicConv2d(64, 96, 3, padding: 1, device: device);
            branch3x3dbl_3 = new BasicConv2d(96, 96, 3, padding: 1, device: device);
            branch_pool = new BasicConv2d(inChannels, poolFeatures, 1, device: device);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            return Cat(
                branch1x1.call(x),
                branch5x5_2.call(branch5x5_1.call(x)),
                branch3x3dbl_3.call(branch3x3dbl_2.call(branch3x3dbl_1.call(x))),
                branch_pool.call(nn.functional.avg_pool2d(x, 3, 1, 1))).MoveToOuterDisposeScope();
        }

        public string ExportOnnx(OnnxExportContext c, string x) => c.Concat(1,
            c.Emit(branch1x1, x),
            c.EmitAll(x, [branch5x5_1, branch5x5_2]),
            c.EmitAll(x, [branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3]),
            c.Emit(branch_pool, PoolBranch(c, x)));
    }

    private sealed class InceptionB : nn.Module<Tensor, Tensor>, IOnnxExportable
    {
        private readonly BasicConv2d branch3x3, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3;

        public InceptionB(int inChannels, Device? device) : base(nameof(InceptionB))
        {
            branch3x3 = new BasicConv2d(inChannels, 384, 3, stride: 2, device: device);
            branch3x3dbl_1 = new BasicConv2d(inChannels, 64, 1, device: device);
            branch3x3dbl_2 = new BasicConv2d(64, 96, 3, padding: 1, device: device);
            branch3x3dbl_3 = new BasicConv2d(96, 96, 3, stride: 2, device: device);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            return Cat(
                branch3x3.call(x),
                branch3x3dbl_3.call(branch3x3dbl_2.call(branch3x3dbl_1.call(x))),
                nn.functional.max_pool2d(x, 3, 2)).MoveToOuterDisposeScope();
        }

        public string ExportOnnx(OnnxExportContext c, string x) => c.Concat(1,
            c.Emit(branch3x3, x),
            c.EmitAll(x, [branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3]),
            c.MaxPool(x, 3, 2));
    }

    private sealed class InceptionC : nn.Module<Tensor, Tensor>, IOnnxExportable
    {
        private readonly BasicConv2d branch1x1, branch7x7_1, branch7x7_2, branch7x7_3,
            branch7x7dbl_1, branch7x7dbl_2, branch7x7dbl_3, branch7x7dbl_4, branch7x7dbl_5, branch_pool;

        public InceptionC(int inChannels, int c7, Device? device) : base(nameof(InceptionC))
        {
            branch1x1 = new BasicConv2d(inChannels, 192, 1, device: device);
            branch7x7_1 = new BasicConv2d(inChannels, c7, 1, device: device);
            branch7x7_2 = new BasicConv2d(c7, c7, (1, 7), padding: (0, 3), device: device);
            branch7x7_3 = new BasicConv2d(c7, 192, (7, 1), padding: (3, 0), device: device);
            branch7x7dbl_1 = new BasicConv2d(inChannels, c7, 1, device: device);
            branch7x7dbl_2 = new BasicConv2d(c7, c7, (7, 1), padding: (3, 0), device: device);
            branch7x7dbl_3 = new BasicConv2d(c7, c7, (1, 7), padding: (0, 3), device: device);
            branch7x7dbl_4 = new BasicConv2d(c7, c7, (7, 1), padding: (3, 0), device: device);
            branch7x7dbl_5 = new BasicConv2d(c7, 192, (1, 7), padding: (0, 3), device: device);
            branch_pool = new BasicConv2d(inChannels, 192, 1, device: device);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            var b7 = branch7x7_3.call(branch7x7_2.call(branch7x7_1.call(x)));
            var b7dbl = branch7x7dbl_5.call(branch7x7dbl_4.call(branch7x7dbl_3.call(branch7x7dbl_2.call(branch7x7dbl_1.call(x)))));
            return Cat(branch1x1.call(x), b7, b7dbl, branch_pool.call(nn.functional.avg_pool2d(x, 3, 1, 1))).MoveToOuterDisposeScope();
        }

        public string ExportOnnx(OnnxExportContext c, string x) => c.Concat(1,
            c.Emit(branch1x1, x),
            c.EmitAll(x, [branch7x7_1, branch7x7_2, branch7x7_3]),
            c.EmitAll(x, [branch7x7dbl_1, branch7x7dbl_2, branch7x7dbl_3, branch7x7dbl_4, branch7x7dbl_5]),
            c.Emit(branch_pool, PoolBranch(c, x)));
    }

    private sealed class InceptionD : nn.Module<Tensor, Tensor>, IOnnxExportable
    {
        private readonly BasicConv2d branch3x3_1, branch3x3_2, branch7x7x3_1, branch7x7x3_2, branch7x7x3_3, branch7x7x3_4;

        public InceptionD(int inChannels, Device? device) : base(nameof(InceptionD))
        {
            branch3x3_1 = new BasicConv2d(inChannels, 192, 1, device: device);
            branch3x3_2 = new BasicConv2d(192, 320, 3, stride: 2, device: device);
            branch7x7x3_1 = new BasicConv2d(inChannels, 192, 1, device: device);
            branch7x7x3_2 = new BasicConv2d(192, 192, (1, 7), padding: (0, 3), device: device);
            branch7x7x3_3 = new BasicConv2d(192, 192, (7, 1), padding: (3, 0), device: device);
            branch7x7x3_4 = new BasicConv2d(192, 192, 3, stride: 2, device: device);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            return Cat(
                branch3x3_2.call(branch3x3_1.call(x)),
                branch7x7x3_4.call(branch7x7x3_3.call(branch7x7x3_2.call(branch7x7x3_1.call(x)))),
                nn.functional.max_pool2d(x, 3, 2)).MoveToOuterDisposeScope();
        }

        public string ExportOnnx(OnnxExportContext c, string x) => c.Concat(1,
            c.EmitAll(x, [branch3x3_1, branch3x3_2]),
            c.EmitAll(x, [branch7x7x3_1, branch7x7x3_2, branch7x7x3_3, branch7x7x3_4]),
            c.MaxPool(x, 3, 2));
    }

    private sealed class InceptionE : nn.Module<Tensor, Tensor>, IOnnxExportable
    {
        private readonly BasicConv2d branch1x1, branch3x3_1, branch3x3_2a, branch3x3_2b,
            branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3a, branch3x3dbl_3b, branch_pool;

        public InceptionE(int inChannels, Device? device) : base(nameof(InceptionE))
        {
            branch1x1 = new BasicConv2d(inChannels, 320, 1, device: device);
            branch3x3_1 = new BasicConv2d(inChannels, 384, 1, device: device);
            branch3x3_2a = new BasicConv2d(384, 384, (1, 3), padding: (0, 1), device: device);
            branch3x3_2b = new BasicConv2d(384, 384, (3, 1), padding: (1, 0), device: device);
            branch3x3dbl_1 = new BasicConv2d(inChannels, 448, 1, device: device);
            branch3x3dbl_2 = new BasicConv2d(448, 384, 3, padding: 1, device: device);
            branch3x3dbl_3a = new BasicConv2d(384, 384, (1, 3), padding: (0, 1), device: device);
            branch3x3dbl_3b = new BasicConv2d(384, 384, (3, 1), padding: (1, 0), device: device);
            branch_pool = new BasicConv2d(inChannels, 192, 1, device: device);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            var b3 = branch3x3_1.call(x);
            var b3dbl = branch3x3dbl_2.call(branch3x3dbl_1.call(x));
            return Cat(
                branch1x1.call(x),
                Cat(branch3x3_2a.call(b3), branch3x3_2b.call(b3)),
                Cat(branch3x3dbl_3a.call(b3dbl), branch3x3dbl_3b.call(b3dbl)),
                branch_pool.call(nn.functional.avg_pool2d(x, 3, 1, 1))).MoveToOuterDisposeScope();
        }

        public string ExportOnnx(OnnxExportContext c, string x)
        {
            var b3 = c.Emit(branch3x3_1, x);
            var b3dbl = c.EmitAll(x, [branch3x3dbl_1, branch3x3dbl_2]);
            return c.Concat(1,
                c.Emit(branch1x1, x),
                c.Concat(1, c.Emit(branch3x3_2a, b3), c.Emit(branch3x3_2b, b3)),
                c.Concat(1, c.Emit(branch3x3dbl_3a, b3dbl), c.Emit(branch3x3dbl_3b, b3dbl)),
                c.Emit(branch_pool, PoolBranch(c, x)));
        }
    }
}

/// <summary>
/// torchvision's Inception v3 <c>InceptionAux</c>: 5×5 average pool with stride 3, <c>conv0</c> (1×1 to 128), <c>conv1</c>
/// (5×5 to 768), global average pool, <c>fc</c> (768→classes).
/// </summary>
internal sealed class InceptionV3Aux : nn.Module<Tensor, Tensor>
{
    private readonly BasicConv2d conv0;
    private readonly BasicConv2d conv1;
    private nn.Module<Tensor, Tensor> fc;

    public InceptionV3Aux(int inChannels, int numClasses, Device? device) : base("InceptionAux")
    {
        conv0 = new BasicConv2d(inChannels, 128, 1, device: device);
        conv1 = new BasicConv2d(128, 768, 5, device: device);
        fc = CreateFc(numClasses, device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = conv1.call(conv0.call(nn.functional.avg_pool2d(x, 5, 3)));
        return fc.call(nn.functional.adaptive_avg_pool2d(h, [1, 1]).flatten(1)).MoveToOuterDisposeScope();
    }

    /// <summary>Replaces <c>fc</c> with a fresh layer for <paramref name="numClasses"/> classes (identity for 0).</summary>
    public void ResetClassifier(int numClasses, Device? device)
    {
        var old = fc;
        fc = CreateFc(numClasses, device);
        register_module("fc", null!);
        register_module("fc", fc);
        old.Dispose();
    }

    private static nn.Module<Tensor, Tensor> CreateFc(int numClasses, Device? device)
    {
        if (numClasses == 0) return nn.Identity();
        var fc = Ops.Linear(768, numClasses, device: device);
        using var noGrad = no_grad();
        Layers.TruncatedNormal(fc.weight, 0, 0.001, -2, 2);
        return fc;
    }
}

/// <summary>Registers torchvision's <c>inception_v3</c>.</summary>
public sealed partial class InceptionV3Family : IModelFamily
{
    /// <summary>Family name used in <see cref="ModelInfo.Family"/>.</summary>
    public const string Family = "inception";

    /// <summary>Auto: what the family measured faster on a CPU with native bfloat16 (docs/performance.md).</summary>
    public AutoCompute AutoCompute => AutoCompute.BFloat16ChannelsLastInBFloat16;

    /// <inheritdoc />
    public IEnumerable<ModelDefinition> Models =>
        [new ModelDefinition(InceptionV3.ModelName, Family, InceptionV3.Config, (options, device) => new InceptionV3(options, device))
        {
            Capabilities = ModelCapabilities.Cnn with { AuxLogits = true, TransformInput = true },
        }.WithWeights(WeightsEnums)];
}
