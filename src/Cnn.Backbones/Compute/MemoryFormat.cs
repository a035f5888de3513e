using static TorchSharp.torch;

namespace Cnn.Backbones.Compute;

/// <summary>
/// Channels-last ("NHWC") tensors without a memory-format argument: TorchSharp 0.107 has no <c>memory_format</c>, but a
/// channels-last tensor is an [N, C, H, W] tensor whose strides walk the channels fastest, which
/// <c>x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)</c> produces (what PyTorch's <c>to(memory_format=channels_last)</c>
/// gives for 4-D tensors). libtorch's CPU convolution, normalisation, pooling and element-wise kernels keep the format, so one
/// conversion of a network's input carries through.
/// </summary>
public static class MemoryFormat
{
    /// <summary>True when <paramref name="x"/> is a 4-D tensor laid out channels-last (dense, channel stride 1).</summary>
    /// <param name="x">Any tensor.</param>
    public static bool IsChannelsLast(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() != 4) return false;
        long c = x.shape[1], h = x.shape[2], w = x.shape[3];
        return x.stride(1) == 1 && x.stride(3) == c && x.stride(2) == c * w && x.stride(0) == c * w * h;
    }

    /// <summary>
    /// <paramref name="x"/> with channels-last strides: the same values and shape, a copy unless it already is channels-last
    /// (then an alias). Tensors that are not 4-D are returned as an alias.
    /// </summary>
    /// <param name="x">An [N, C, H, W] tensor.</param>
    public static Tensor ToChannelsLast(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() != 4 || IsChannelsLast(x)) return x.alias();
        using var nhwc = x.permute(0, 2, 3, 1);
        using var dense = nhwc.contiguous();
        return dense.permute(0, 3, 1, 2);
    }
}
