using Cnn.Backbones.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Weights;

/// <summary>
/// Adapts a pretrained first-convolution weight to a different number of input channels, with timm's
/// <c>adapt_input_conv</c> rule, so RGB weights can start a grayscale or multi-spectral model.
/// </summary>
internal static class InputChannelAdapter
{
    /// <summary>
    /// Returns a new weight [O, <paramref name="inChannels"/>, kH, kW] from <paramref name="weight"/> [O, I, kH, kW]:
    /// <list type="bullet">
    /// <item><paramref name="inChannels"/> = I: an unchanged copy.</item>
    /// <item>1 channel: the sum over the input channels; when I &gt; 3 (space-to-depth stems, I a multiple of 3) the sum over each
    /// group of 3, giving I/3 channels, as timm does.</item>
    /// <item>other counts, from I = 3: the RGB channels repeated ceil(N/3) times, the first N kept, scaled by 3/N so activations keep
    /// their magnitude.</item>
    /// </list>
    /// As in timm, the arithmetic runs in float32 and the result is converted back to the weight's dtype; the device is kept.
    /// </summary>
    /// <exception cref="ArgumentException">The weight is not 4-D, <paramref name="inChannels"/> is not positive, or the
    /// conversion is not defined (from I ≠ 3 to more than one channel, or to 1 channel from I &gt; 3 not a multiple of 3).</exception>
    public static Tensor Adapt(Tensor weight, int inChannels)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.dim() != 4)
            throw new ArgumentException($"Expected a convolution weight [out, in, kH, kW], got shape [{string.Join(", ", weight.shape)}].", nameof(weight));
        if (inChannels < 1)
            throw new ArgumentException($"inChannels must be at least 1, got {inChannels}.", nameof(inChannels));
        long outChannels = weight.shape[0], sourceChannels = weight.shape[1], kh = weight.shape[2], kw = weight.shape[3];
        if (inChannels == sourceChannels)
            return weight.detach().clone();

        using var scope = torch.NewDisposeScope();
        var w = weight.detach().to(ScalarType.Float32);
        Tensor adapted;
        if (inChannels == 1)
        {
            if (sourceChannels > 3)
            {
                if (sourceChannels % 3 != 0)
                    throw new ArgumentException($"Cannot adapt a {sourceChannels}-channel weight to 1 channel: {sourceChannels} is not a multiple of 3.", nameof(weight));
                adapted = w.reshape(outChannels, sourceChannels / 3, 3, kh, kw).sum(2);
            }
            else
            {
                adapted = w.sum(1, keepdim: true);
            }
        }
        else
        {
            if (sourceChannels != 3)
                throw new ArgumentException(
                    $"Cannot adapt a {sourceChannels}-channel weight to {inChannels} channels: only 3-channel (RGB) weights can be repeated to other channel counts.",
                    nameof(weight));
            long repeat = (inChannels + 2) / 3;
            adapted = w.repeat(1, repeat, 1, 1).narrow(1, 0, inChannels).Times(3.0 / inChannels);
        }
        return adapted.to(weight.dtype).contiguous().MoveToOuterDisposeScope();
    }
}
