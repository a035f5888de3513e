using Cnn.Backbones.Native;
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
internal sealed class PrecisionConv2d : PrecisionLayer
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

    // The BatchNorm folded into this convolution, with the weight and bias that apply both (computed when folded).
    private (FoldableBatchNorm2d Norm, Tensor Weight, Tensor Bias)? _folded;

    /// <summary>Whether a BatchNorm is folded into this convolution.</summary>
    public bool IsFolded => _folded is not null;

    /// <summary>
    /// Folds <paramref name="norm"/> (which normalises this convolution's output) into this convolution: from the current
    /// weights and running statistics, <c>w' = w · γ / √(var + ε)</c> per output channel and <c>b' = (b − mean) · γ / √(var + ε) + β</c>.
    /// No-grad eval-mode passes then convolve with <c>w'</c>, <c>b'</c> and the BatchNorm passes its input on; any other pass
    /// computes both layers as before. Switching to training mode unfolds.
    /// </summary>
    internal void Fold(FoldableBatchNorm2d norm)
    {
        Unfold();
        if (norm.running_mean is null || norm.running_var is null || norm.weight is null || norm.bias is null)
            throw new InvalidOperationException("Only an affine BatchNorm with running statistics folds into a convolution.");
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var scale = norm.weight / norm.running_var.Plus(norm.eps).sqrt();
        var foldedWeight = weight * scale.view(-1, 1, 1, 1);
        var foldedBias = ((bias is null ? -norm.running_mean : bias - norm.running_mean) * scale).Plus(norm.bias);
        _folded = (norm, foldedWeight.DetachFromDisposeScope(), foldedBias.DetachFromDisposeScope());
        norm.FoldedInto = this;
    }

    /// <summary>Ends a <see cref="Fold"/>: both layers compute on their own again.</summary>
    internal void Unfold()
    {
        if (_folded is not { } folded) return;
        _folded = null;
        folded.Norm.FoldedInto = null;
        folded.Weight.Dispose();
        folded.Bias.Dispose();
    }

    /// <summary>
    /// Whether this pass uses the folded parameters (so <paramref name="norm"/> passes its input on): both layers in eval mode,
    /// gradients off, and the parameters still of the type and device they were folded on.
    /// </summary>
    internal bool AppliesFolded(FoldableBatchNorm2d norm) =>
        _folded is { } folded && ReferenceEquals(folded.Norm, norm) && !training && !norm.training && !is_grad_enabled()
        && folded.Weight.dtype == weight.dtype && folded.Weight.device_type == weight.device_type && folded.Weight.device_index == weight.device_index;

    /// <inheritdoc />
    private protected override (Tensor Weight, Tensor? Bias) EffectiveParameters() =>
        _folded is { } folded && AppliesFolded(folded.Norm) ? (folded.Weight, folded.Bias) : (weight, bias);

    /// <inheritdoc />
    public override void train(bool train = true)
    {
        base.train(train);
        if (train) Unfold();
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) Unfold();
        base.Dispose(disposing);
    }
}
