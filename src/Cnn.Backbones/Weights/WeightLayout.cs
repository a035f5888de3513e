namespace Cnn.Backbones.Weights;

/// <summary>The key layout of a saved state dict.</summary>
public enum WeightLayout
{
    /// <summary>This library's keys (torchvision's, for the architectures torchvision has).</summary>
    Native,

    /// <summary>timm's keys for the same architecture (<see cref="Models.ModelDefinition.TimmKeyMap"/>).</summary>
    Timm,
}
