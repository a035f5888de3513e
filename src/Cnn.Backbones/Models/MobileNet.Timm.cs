using Cnn.Backbones.Weights.Timm;

namespace Cnn.Backbones.Models;

/// <summary>
/// timm's <c>mobilenetv2_100</c> and <c>mobilenetv3_large_100</c>/<c>mobilenetv3_small_100</c> are torchvision's width-1.0
/// networks under other keys: torchvision numbers the blocks <c>features.1..N</c>, timm <c>blocks.{stage}.{block}</c>; timm's
/// MobileNetV3 head <c>conv_head</c> is a 1×1 convolution where torchvision's <c>classifier.0</c> is a Linear, and its BatchNorm
/// eps is 1e-5 where torchvision's is 1e-3 (a model that loads a timm checkpoint takes timm's).
/// </summary>
public sealed partial class MobileNetFamily : ITimmFamily
{
    private static readonly BlockLayout[] V2Blocks =
    [
        BlockLayout.Parse("depthwise-separable", "0.0 = conv_dw", "0.1 = bn1", "1 = conv_pw", "2 = bn2"),
        BlockLayout.Parse("inverted residual", "0.0 = conv_pw", "0.1 = bn1", "1.0 = conv_dw", "1.1 = bn2", "2 = conv_pwl", "3 = bn3"),
    ];

    private static readonly BlockLayout[] V3Blocks =
    [
        BlockLayout.Parse("depthwise-separable", "block.0.0 = conv_dw", "block.0.1 = bn1", "block.1.0 = conv_pw", "block.1.1 = bn2"),
        BlockLayout.Parse("depthwise-separable with SE",
            "block.0.0 = conv_dw", "block.0.1 = bn1", "block.1.fc1 = se.conv_reduce", "block.1.fc2 = se.conv_expand", "block.2.0 = conv_pw", "block.2.1 = bn2"),
        BlockLayout.Parse("inverted residual",
            "block.0.0 = conv_pw", "block.0.1 = bn1", "block.1.0 = conv_dw", "block.1.1 = bn2", "block.2.0 = conv_pwl", "block.2.1 = bn3"),
        BlockLayout.Parse("inverted residual with SE",
            "block.0.0 = conv_pw", "block.0.1 = bn1", "block.1.0 = conv_dw", "block.1.1 = bn2", "block.2.fc1 = se.conv_reduce", "block.2.fc2 = se.conv_expand",
            "block.3.0 = conv_pwl", "block.3.1 = bn3"),
        BlockLayout.Parse("final 1×1 conv", "0 = conv", "1 = bn1"),
    ];

    private static readonly RuleKeyMap V2Map = new("timm mobilenetv2",
        KeyRule.ParseAll("features.0.0 = conv_stem", "features.0.1 = bn1", "features.18.0 = conv_head", "features.18.1 = bn2", "classifier.1 = classifier"),
        [new BlockRule(new KeyPattern("features.{n}.conv"), new KeyPattern("blocks.{s}.{b}"), V2Blocks) { Flat = new FlatIndex("n", "s", "b", 1, [1, 2, 3, 4, 3, 3, 1]) }]);

    private static RuleKeyMap V3Map(IReadOnlyList<int> stages) => new("timm mobilenetv3",
        [
            KeyRule.Parse("features.0.0 = conv_stem"), KeyRule.Parse("features.0.1 = bn1"),
            KeyRule.Parse("classifier.0 = conv_head", TensorTransform.ConvAsLinear(1)), KeyRule.Parse("classifier.3 = classifier"),
        ],
        [new BlockRule(new KeyPattern("features.{n}"), new KeyPattern("blocks.{s}.{b}"), V3Blocks) { Flat = new FlatIndex("n", "s", "b", 1, stages) }])
    {
        BatchNormEps = 1e-5,
    };

    /// <inheritdoc />
    ModelDefinition ITimmFamily.WithTimm(ModelDefinition definition) => definition.Name switch
    {
        "mobilenet_v2" => definition with { TimmNames = ["mobilenetv2_100"], TimmKeyMap = V2Map },
        // timm's stages: the blocks of torchvision's features.1..15 (large) / 1..11 (small), then the final 1×1 conv.
        "mobilenet_v3_large" => definition with { TimmNames = ["mobilenetv3_large_100"], TimmKeyMap = V3Map([1, 2, 3, 4, 2, 3, 1]) },
        "mobilenet_v3_small" => definition with { TimmNames = ["mobilenetv3_small_100"], TimmKeyMap = V3Map([1, 2, 3, 2, 3, 1]) },
        _ => definition,
    };

    /// <inheritdoc />
    IReadOnlyList<TimmRefusal> ITimmFamily.TimmRefusals { get; } =
    [
        new(@"tf_mobilenetv3\w*",
            "timm's tf_mobilenetv3_* are ports of TensorFlow's: 'same' padding (asymmetric at stride 2) and BatchNorm eps 1e-3; use mobilenetv3_large_100 or mobilenetv3_small_100."),
        new(@"mobilenetv3_rw", "timm's mobilenetv3_rw is timm's own MobileNetV3 (other head and SE); use mobilenetv3_large_100."),
        new(@"mobilenetv3_(large|small)_(?!100$)\w+",
            "only width 1.0 (mobilenetv3_large_100, mobilenetv3_small_100) is torchvision's network; other widths and the 'minimal' variants are not registered."),
        new(@"mobilenetv2_(?!100$)\w+", "only mobilenetv2_100 (width 1.0) is torchvision's MobileNetV2; other widths and the deeper 'd' variants are not registered."),
    ];
}
