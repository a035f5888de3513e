using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Compute;

/// <summary>
/// A 2-D convolution equal to <c>torch.nn.Conv2d</c> (zero padding; state-dict keys <c>weight</c> and <c>bias</c>; the same
/// default initialisation, drawing the same random numbers) that follows <see cref="MixedPrecision"/>: inside a bfloat16 or
/// float16 scope it convolves in that type and returns that type. TorchSharp's <c>Conv2d</c> is sealed, so the policy needs a
/// layer of our own. Create it with <see cref="Ops.Conv2d(long, long, long, long, long, long, long, bool, Device?)"/>.
/// </summary>
public sealed class PrecisionConv2d : PrecisionLayer
{
    internal PrecisionConv2d(long inChannels, long outChannels, (long, long) kernelSize, (long, long) stride, (long, long) padding,
        (long, long) dilation, long groups, bool bias, Device? device) : base("Conv2d")
    {
        if (inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException($"A convolution with {groups} groups needs channels divisible by it; got {inChannels} in, {outChannels} out.");
        in_channels = inChannels;
        out_channels = outChannels;
        kernel_size = [kernelSize.Item1, kernelSize.Item2];
        this.stride = [stride.Item1, stride.Item2];
        this.padding = [padding.Item1, padding.Item2];
        this.dilation = [dilation.Item1, dilation.Item2];
        this.groups = groups;
        weight = nn.Parameter(empty([outChannels, inChannels / groups, kernelSize.Item1, kernelSize.Item2], device: device));
        if (bias) this.bias = nn.Parameter(empty(outChannels, device: device));
        Initialization.ResetLikeTorch(weight, this.bias);
    }

    /// <summary>Input channels.</summary>
    public long in_channels { get; }

    /// <summary>Output channels.</summary>
    public long out_channels { get; }

    /// <summary>Kernel height and width.</summary>
    public long[] kernel_size { get; }

    /// <summary>Stride per spatial axis.</summary>
    public long[] stride { get; }

    /// <summary>Zero padding per spatial axis (both sides).</summary>
    public long[] padding { get; }

    /// <summary>Dilation per spatial axis.</summary>
    public long[] dilation { get; }

    /// <summary>Blocked connections from input to output channels.</summary>
    public long groups { get; }

    /// <inheritdoc />
    protected override Tensor Apply(Tensor input, Tensor weight, Tensor? bias) =>
        nn.functional.conv2d(input, weight, bias, stride, padding, dilation, groups);
}
