namespace Cnn.Backbones.Models;

/// <summary>
/// Registers timm's SE-ResNets (<c>seresnet50</c>, <c>seresnet101</c>): torchvision-layout ResNets (<see cref="ResNet"/>) with
/// timm's <c>block_args=dict(attn_layer='se')</c> — a squeeze-excitation (<c>layerK.i.se.fc1/fc2</c>, 1×1 convs with bias,
/// <c>make_divisible(C / 16, 8)</c> channels, ReLU, sigmoid) after each bottleneck's <c>bn3</c>. Keys are timm's
/// (<c>conv1, bn1, layer1..4, fc</c>). torchvision has no SE-ResNet.
/// </summary>
public sealed partial class SeResNetFamily : IModelFamily
{
    /// <summary>The registered names of the family's models, one constant each (the <c>CnnTrainer</c> factories name models by them).</summary>
    public static class Names
    {
        /// <summary><c>seresnet50</c>.</summary>
        public const string SeResNet50 = "seresnet50";

        /// <summary><c>seresnet101</c>.</summary>
        public const string SeResNet101 = "seresnet101";
    }

    /// <summary>Family name used in <see cref="ModelInfo.Family"/>.</summary>
    public const string Family = "seresnet";

    /// <summary>Auto: what the family measured faster on a CPU with native bfloat16 (docs/performance.md).</summary>
    public AutoCompute AutoCompute => AutoCompute.BFloat16AndChannelsLast;

    /// <summary>The architectures.</summary>
    public static IReadOnlyList<ResNetArchitecture> Architectures { get; } =
    [
        // timm seresnet50.ra2_in1k: 224 px, crop_pct 0.95, bicubic, ImageNet mean/std.
        new(SeResNetFamily.Names.SeResNet50, ResNetBlock.Bottleneck, [3, 4, 6, 3], 1, 64, TimmConfig(0.95, "bicubic", "timm seresnet50.ra2_in1k"), ResNetAttention.SqueezeExcitation),
        // timm publishes no seresnet101 weights: its default configuration (224 px, crop_pct 0.875, bilinear).
        new(SeResNetFamily.Names.SeResNet101, ResNetBlock.Bottleneck, [3, 4, 23, 3], 1, 64, TimmConfig(0.875, "bilinear", "timm default (no pretrained weights)"), ResNetAttention.SqueezeExcitation),
    ];

    /// <inheritdoc />
    public IEnumerable<ModelDefinition> Models =>
        Architectures.Select(a => ResNetFamily.Register(a, Family));

    private static PretrainedConfig TimmConfig(double cropPct, string interpolation, string tag) =>
        new(new InputSize(3, 224, 224), PretrainedConfig.ImageNetMean, PretrainedConfig.ImageNetStd, cropPct, interpolation, "conv1", "fc", 1000, tag);
}
