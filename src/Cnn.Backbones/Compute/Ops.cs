using static TorchSharp.torch;

namespace Cnn.Backbones.Compute;

/// <summary>
/// Factories of our convolution, linear and BatchNorm layers, with the parameters (and defaults) of <c>torch.nn.Conv2d</c>,
/// <c>torch.nn.Linear</c> and <c>torch.nn.BatchNorm2d</c>. Every model builds those layers here, so the precision policy
/// (<see cref="MixedPrecision"/>) and BatchNorm folding reach all of them.
/// </summary>
internal static class Ops
{
    /// <summary>A square-kernel 2-D convolution (<c>nn.Conv2d(in, out, k, stride, padding, dilation, groups, bias)</c>).</summary>
    /// <param name="inChannels">Input channels.</param>
    /// <param name="outChannels">Output channels.</param>
    /// <param name="kernelSize">Kernel size.</param>
    /// <param name="stride">Stride.</param>
    /// <param name="padding">Zero padding on each side.</param>
    /// <param name="dilation">Dilation.</param>
    /// <param name="groups">Blocked connections from input to output channels.</param>
    /// <param name="bias">Whether the layer has a bias.</param>
    /// <param name="device">Device for the parameters, or null.</param>
    public static PrecisionConv2d Conv2d(long inChannels, long outChannels, long kernelSize, long stride = 1, long padding = 0,
        long dilation = 1, long groups = 1, bool bias = true, Device? device = null) =>
        new(inChannels, outChannels, (kernelSize, kernelSize), (stride, stride), (padding, padding), (dilation, dilation), groups, bias, device);

    /// <summary>A 2-D convolution with per-axis kernel, stride, padding and dilation.</summary>
    /// <param name="inChannels">Input channels.</param>
    /// <param name="outChannels">Output channels.</param>
    /// <param name="kernelSize">Kernel (height, width).</param>
    /// <param name="stride">Stride, default (1, 1).</param>
    /// <param name="padding">Zero padding, default (0, 0).</param>
    /// <param name="dilation">Dilation, default (1, 1).</param>
    /// <param name="groups">Blocked connections from input to output channels.</param>
    /// <param name="bias">Whether the layer has a bias.</param>
    /// <param name="device">Device for the parameters, or null.</param>
    public static PrecisionConv2d Conv2d(long inChannels, long outChannels, (long, long) kernelSize, (long, long)? stride = null,
        (long, long)? padding = null, (long, long)? dilation = null, long groups = 1, bool bias = true, Device? device = null) =>
        new(inChannels, outChannels, kernelSize, stride ?? (1, 1), padding ?? (0, 0), dilation ?? (1, 1), groups, bias, device);

    /// <summary>A linear layer (<c>nn.Linear(in, out, bias)</c>).</summary>
    /// <param name="inFeatures">Input features.</param>
    /// <param name="outFeatures">Output features.</param>
    /// <param name="hasBias">Whether the layer has a bias.</param>
    /// <param name="device">Device for the parameters, or null.</param>
    public static PrecisionLinear Linear(long inFeatures, long outFeatures, bool hasBias = true, Device? device = null) =>
        new(inFeatures, outFeatures, hasBias, device);

    /// <summary>
    /// A 2-D BatchNorm (<c>nn.BatchNorm2d(features, eps, momentum)</c>, affine, tracking running statistics) that
    /// <see cref="Models.Backbone.FoldBatchNorm"/> can fold into the convolution before it.
    /// </summary>
    /// <param name="features">Channels.</param>
    /// <param name="eps">Added to the variance.</param>
    /// <param name="momentum">Weight of each batch in the running statistics.</param>
    /// <param name="device">Device for the parameters and statistics, or null.</param>
    public static FoldableBatchNorm2d BatchNorm2d(long features, double eps = 1e-5, double momentum = 0.1, Device? device = null) =>
        new(features, eps, momentum, device);
}
