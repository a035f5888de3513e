using Cnn.Backbones.Weights.Timm;

namespace Cnn.Backbones.Models;

/// <summary>
/// timm's <c>inception_v3</c> is torchvision's network with torchvision's keys, built without the auxiliary classifier and
/// without torchvision's <c>transform_input</c> (its configurations normalise with mean = std = 0.5 instead, which is the same
/// input): a model for a timm checkpoint is built with <see cref="ModelOptions.AuxLogits"/> and
/// <see cref="ModelOptions.TransformInput"/> off (<see cref="RuleKeyMap.CheckpointOptions"/>).
/// </summary>
public sealed partial class InceptionV3Family : ITimmFamily
{
    private static readonly RuleKeyMap TimmMap =
        RuleKeyMap.Identity("timm inception_v3", o => o with { AuxLogits = false, TransformInput = false });

    /// <inheritdoc />
    ModelDefinition ITimmFamily.WithTimm(ModelDefinition definition) =>
        definition with { TimmNames = [definition.Name], TimmKeyMap = TimmMap };

    /// <inheritdoc />
    IReadOnlyList<TimmRefusal> ITimmFamily.TimmRefusals { get; } = [];
}
