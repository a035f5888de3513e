using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Compute;

/// <summary>
/// <c>torch.nn.BatchNorm2d</c> (TorchSharp's own computation, keys, defaults and running-statistics update) that can be folded
/// into the convolution whose output it normalises (<see cref="Models.Backbone.FoldBatchNorm"/>): while folded, its no-grad
/// eval-mode forward passes return their input, because the convolution has already applied it. TorchSharp's
/// <c>BatchNorm2d</c> is sealed, so folding needs a layer of our own. Create it with
/// <see cref="Ops.BatchNorm2d(long, double, double, Device?)"/>.
/// </summary>
public sealed class FoldableBatchNorm2d : BatchNorm
{
    internal FoldableBatchNorm2d(long features, double eps, double momentum, Device? device)
        : base(features, eps, momentum, affine: true, track_running_stats: true, device, dtype: null, "BatchNorm2d") { }

    /// <summary>The convolution this layer is folded into, or null.</summary>
    internal PrecisionConv2d? FoldedInto { get; set; }

    /// <inheritdoc />
    public override Tensor forward(Tensor input) =>
        FoldedInto is { } conv && conv.AppliesFolded(this) ? input.alias() : base.forward(input);

    /// <inheritdoc />
    protected override void ValidateInputDimensions(Tensor input)
    {
        if (input.ndim != 4) throw new ArgumentException($"BatchNorm2d expects 4-D input [N, C, H, W]; got {input.ndim}-D.");
    }
}
