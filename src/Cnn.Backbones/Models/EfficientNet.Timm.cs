using Cnn.Backbones.Weights.Timm;

namespace Cnn.Backbones.Models;

/// <summary>
/// timm's <c>efficientnet_b0..b7</c> and <c>efficientnetv2_s/m/l</c> are torchvision's networks under other keys:
/// <c>conv_stem</c>/<c>bn1</c>, <c>blocks.{stage}.{block}</c> (depthwise-separable, inverted-residual, edge-residual and conv blocks,
/// told apart by their keys), <c>conv_head</c>/<c>bn2</c> and <c>classifier</c>. timm's BatchNorm eps is 1e-5 throughout, where
/// torchvision's B5–B7 and V2 use 1e-3: a model that loads a timm checkpoint takes timm's.
/// </summary>
public sealed partial class EfficientNetFamily : ITimmFamily
{
    private static readonly BlockLayout[] TimmBlocks =
    [
        BlockLayout.Parse("depthwise-separable with SE",
            "0.0 = conv_dw", "0.1 = bn1", "1.fc1 = se.conv_reduce", "1.fc2 = se.conv_expand", "2.0 = conv_pw", "2.1 = bn2"),
        BlockLayout.Parse("inverted residual with SE",
            "0.0 = conv_pw", "0.1 = bn1", "1.0 = conv_dw", "1.1 = bn2", "2.fc1 = se.conv_reduce", "2.fc2 = se.conv_expand", "3.0 = conv_pwl", "3.1 = bn3"),
        BlockLayout.Parse("fused conv (expansion 1)", "0.0 = conv", "0.1 = bn1"),
        BlockLayout.Parse("edge residual (fused MBConv)", "0.0 = conv_exp", "0.1 = bn1", "1.0 = conv_pwl", "1.1 = bn2"),
    ];

    /// <summary>timm's name of each architecture.</summary>
    private static string TimmName(string name) => name.StartsWith("efficientnet_v2_", StringComparison.Ordinal)
        ? "efficientnetv2_" + name["efficientnet_v2_".Length..]
        : name;

    private static RuleKeyMap TimmMap(EfficientNetArchitecture a)
    {
        int head = a.Stages.Count + 1;
        return new RuleKeyMap(a.Name.Contains("_v2_", StringComparison.Ordinal) ? "timm efficientnetv2" : "timm efficientnet",
            KeyRule.ParseAll("features.0.0 = conv_stem", "features.0.1 = bn1", $"features.{head}.0 = conv_head", $"features.{head}.1 = bn2",
                "classifier.1 = classifier"),
            [new BlockRule(new KeyPattern("features.{s+1}.{b}.block"), new KeyPattern("blocks.{s}.{b}"), TimmBlocks)])
        {
            BatchNormEps = 1e-5,
        };
    }

    /// <inheritdoc />
    ModelDefinition ITimmFamily.WithTimm(ModelDefinition definition) =>
        Architectures.FirstOrDefault(a => a.Name == definition.Name) is { } a
            ? definition with { TimmNames = [TimmName(a.Name)], TimmKeyMap = TimmMap(a) }
            : definition;

    /// <inheritdoc />
    IReadOnlyList<TimmRefusal> ITimmFamily.TimmRefusals { get; } =
    [
        new(@"tf_efficientnet\w*",
            "timm's tf_* EfficientNets are ports of TensorFlow's: 'same' padding (asymmetric at stride 2) and BatchNorm eps 1e-3, " +
            "so they are other networks; use efficientnet_b0..b7 or efficientnetv2_s/m/l tags."),
        new(@"efficientnetv2_rw_\w+|gc_efficientnetv2_\w+", "timm's efficientnetv2_rw_* are timm's own EfficientNetV2 designs (other widths and depths); use efficientnetv2_s/m/l."),
        new(@"efficientnet_(es|em|el|cc|lite)\w*|efficientnet_b\d_(g\w*|pruned)", "timm's EdgeTPU/CondConv/Lite/pruned EfficientNets have other blocks or widths; use efficientnet_b0..b7."),
    ];
}
