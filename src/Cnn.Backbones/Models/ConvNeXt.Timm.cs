using Cnn.Backbones.Weights.Timm;

namespace Cnn.Backbones.Models;

/// <summary>
/// timm's <c>convnext_tiny/small/base/large</c> are torchvision's networks under other keys: <c>stem</c>,
/// <c>stages.{s}.downsample</c> and <c>stages.{s}.blocks.{b}</c> (<c>conv_dw</c>, <c>norm</c>, <c>mlp.fc1/fc2</c> and a layer scale
/// <c>gamma</c> of shape (C,) where torchvision's <c>layer_scale</c> is (C, 1, 1)), <c>head.norm</c> and <c>head.fc</c>.
/// </summary>
public sealed partial class ConvNeXtFamily : ITimmFamily
{
    private static readonly RuleKeyMap TimmMap = new("timm convnext",
        KeyRule.ParseAll(
            "features.0.0 = stem.0", "features.0.1 = stem.1",
            "features.{2*s}.0 = stages.{s}.downsample.0", "features.{2*s}.1 = stages.{s}.downsample.1",
            "classifier.0 = head.norm", "classifier.2 = head.fc"),
        [
            new BlockRule(new KeyPattern("features.{2*s+1}.{b}"), new KeyPattern("stages.{s}.blocks.{b}"),
            [
                new BlockLayout("ConvNeXt block",
                [
                    ..KeyRule.ParseAll("block.0 = conv_dw", "block.2 = norm", "block.3 = mlp.fc1", "block.5 = mlp.fc2"),
                    KeyRule.Parse("layer_scale = gamma", TensorTransform.ChannelScale),
                ]),
            ]),
        ]);

    /// <inheritdoc />
    ModelDefinition ITimmFamily.WithTimm(ModelDefinition definition) =>
        definition with { TimmNames = [definition.Name], TimmKeyMap = TimmMap };

    /// <inheritdoc />
    IReadOnlyList<TimmRefusal> ITimmFamily.TimmRefusals { get; } =
    [
        new(@"convnext_\w+_hnf", "timm's convnext_*_hnf normalise before the head's pooling (head-norm-first); use convnext_tiny/small/base/large."),
        new(@"convnextv2_\w+", "ConvNeXt V2 (global response normalisation) is another network and is not registered; use convnext_tiny/small/base/large."),
    ];
}
