using Cnn.Backbones.Weights.Timm;

namespace Cnn.Backbones.Models;

/// <summary>
/// timm's <c>densenet121/161/169/201</c> are torchvision's networks with torchvision's keys (its hub files of torchvision's
/// weights may keep the old <c>norm.1</c> form, which <see cref="DenseNet"/> already reads).
/// </summary>
public sealed partial class DenseNetFamily : ITimmFamily
{
    private static readonly RuleKeyMap TimmMap = RuleKeyMap.Identity("timm densenet");

    /// <inheritdoc />
    ModelDefinition ITimmFamily.WithTimm(ModelDefinition definition) =>
        definition with { TimmNames = [definition.Name], TimmKeyMap = TimmMap };

    /// <inheritdoc />
    IReadOnlyList<TimmRefusal> ITimmFamily.TimmRefusals { get; } =
    [
        new(@"densenetblur\w*|densenet\d+d", "timm's densenetblur*/densenet*d have a deep stem (and blur pooling); use densenet121, 161, 169 or 201."),
    ];
}
