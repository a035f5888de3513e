namespace Cnn.Backbones.Models;

/// <summary>
/// What <c>Auto</c> precision and memory format turn on for a family's models on a CPU with native bfloat16, declared by the
/// family (<see cref="IModelFamily.AutoCompute"/>) from measurements of <c>benchmarks/Cnn.Benchmarks --compute --model M</c>; the
/// measured figures are in docs/performance.md. A family that declares nothing computes float32 contiguous under <c>Auto</c>.
/// </summary>
/// <param name="BFloat16">Training and inference ran faster in bfloat16 (with float32 master weights).</param>
/// <param name="ChannelsLastInBFloat16">bfloat16 training ran faster on channels-last activations.</param>
/// <param name="ChannelsLastInFloat32">float32 training ran faster on channels-last activations.</param>
public sealed record AutoCompute(bool BFloat16, bool ChannelsLastInBFloat16, bool ChannelsLastInFloat32)
{
    /// <summary>Nothing measured faster: float32, contiguous.</summary>
    public static AutoCompute None { get; } = new(false, false, false);

    /// <summary>bfloat16 and channels-last in either precision (resnet18 1.22×, mobilenet_v3_large 1.62×, efficientnet_b0 1.29×, densenet121 1.30× channels-last in float32).</summary>
    public static AutoCompute BFloat16AndChannelsLast { get; } = new(true, true, true);

    /// <summary>bfloat16, and channels-last only in bfloat16 (convnext_tiny trained at 0.85× channels-last in float32; the families not measured in float32).</summary>
    public static AutoCompute BFloat16ChannelsLastInBFloat16 { get; } = new(true, true, false);
}
