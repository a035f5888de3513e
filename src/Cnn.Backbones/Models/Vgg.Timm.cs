using Cnn.Backbones.Weights.Timm;

namespace Cnn.Backbones.Models;

/// <summary>
/// timm's <c>vgg*</c>: torchvision's <c>features</c>, then <c>pre_logits.fc1</c> (a 7×7 convolution, torchvision's
/// <c>classifier.0</c> Linear reshaped), <c>pre_logits.fc2</c> (a 1×1 convolution, <c>classifier.3</c>) and <c>head.fc</c>
/// (<c>classifier.6</c>). Up to 224 px (a feature map of at most 7×7, which both pool to 7×7) the networks are equal; above it timm slides its
/// 7×7 convolution and averages, torchvision pools to 7×7 first, so a model here computes torchvision's function.
/// </summary>
public sealed partial class VggFamily : ITimmFamily
{
    private static readonly RuleKeyMap TimmMap = new("timm vgg",
    [
        KeyRule.Parse("features.{i} = features.{i}"),
        KeyRule.Parse("classifier.0 = pre_logits.fc1", Weights.Timm.TensorTransform.ConvAsLinear(7)),
        KeyRule.Parse("classifier.3 = pre_logits.fc2", Weights.Timm.TensorTransform.ConvAsLinear(1)),
        KeyRule.Parse("classifier.6 = head.fc"),
    ]);

    /// <inheritdoc />
    ModelDefinition ITimmFamily.WithTimm(ModelDefinition definition) =>
        definition with { TimmNames = [definition.Name], TimmKeyMap = TimmMap };

    /// <inheritdoc />
    IReadOnlyList<TimmRefusal> ITimmFamily.TimmRefusals { get; } = [];
}
