using Cnn.Backbones.Weights.Timm;

namespace Cnn.Backbones.Models;

/// <summary>
/// timm's <c>resnet*</c>, <c>resnext*</c> and <c>wide_resnet*</c> with torchvision's names are torchvision's networks with
/// torchvision's keys (timm's ResNet defaults to torchvision's layout), so their checkpoints load as they are.
/// </summary>
public sealed partial class ResNetFamily : ITimmFamily
{
    private static readonly RuleKeyMap TimmMap = RuleKeyMap.Identity("timm resnet");

    /// <inheritdoc />
    ModelDefinition ITimmFamily.WithTimm(ModelDefinition definition) =>
        definition with { TimmNames = [definition.Name], TimmKeyMap = TimmMap };

    /// <inheritdoc />
    IReadOnlyList<TimmRefusal> ITimmFamily.TimmRefusals { get; } =
    [
        new(@"(resnet|resnext)\d+[a-z]*[bcdst](_\d+x\d+d)?",
            "timm's ResNet-B/C/D/S/T variants (e.g. resnet50d) have a deep three-convolution stem and/or an average-pool shortcut, " +
            "unlike torchvision's ResNet; use resnet50 (timm's resnet50.* tags are torchvision's network)."),
        new(@"resnetv2_\w+", "timm's resnetv2_* are pre-activation ResNets (BiT), another network; use resnet50 etc."),
        new(@"resnet\d+_gn", "timm's resnet*_gn use GroupNorm instead of BatchNorm; use resnet50 etc."),
    ];
}

/// <summary>timm's <c>seresnet50</c>/<c>seresnet101</c> are these networks with these keys.</summary>
public sealed partial class SeResNetFamily : ITimmFamily
{
    private static readonly RuleKeyMap TimmMap = RuleKeyMap.Identity("timm seresnet");

    /// <inheritdoc />
    ModelDefinition ITimmFamily.WithTimm(ModelDefinition definition) =>
        definition with { TimmNames = [definition.Name], TimmKeyMap = TimmMap };

    /// <inheritdoc />
    IReadOnlyList<TimmRefusal> ITimmFamily.TimmRefusals { get; } =
    [
        new(@"seresnet\d+[a-z]+", "timm's seresnet*d/t variants have a deep stem and an average-pool shortcut; use seresnet50 or seresnet101."),
    ];
}
