using Cnn.Backbones.Native;
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
internal sealed class FoldableBatchNorm2d : BatchNorm
{
    internal FoldableBatchNorm2d(long features, double eps, double momentum, Device? device)
        : base(features, eps, momentum, affine: true, track_running_stats: true, device, dtype: null, "BatchNorm2d") { }

    /// <summary>The convolution this layer is folded into, or null.</summary>
    internal PrecisionConv2d? FoldedInto { get; set; }

    /// <summary>
    /// TorchSharp's <c>BatchNorm.forward</c> (torch.nn.BatchNorm2d's), with one change: its training step counts
    /// <c>num_batches_tracked</c> with held scalars, where TorchSharp's <c>add_(1)</c> makes two temporary ones
    /// (see <see cref="Scalars"/>) in every BatchNorm of every training step.
    /// </summary>
    public override Tensor forward(Tensor input)
    {
        if (FoldedInto is { } conv && conv.AppliesFolded(this)) return input.alias();
        ValidateInputDimensions(input);
        double averagingFactor = momentum ?? 0.0;
        if (training && track_running_stats && num_batches_tracked is not null)
        {
            num_batches_tracked.add_(Scalars.One, Scalars.One);
            if (momentum is null) averagingFactor = 1.0 / num_batches_tracked.item<long>();
        }
        bool batchStatistics = training || (running_mean is null && running_var is null);
        bool passRunning = !training || track_running_stats;
        return nn.functional.batch_norm(input, passRunning ? running_mean : null, passRunning ? running_var : null, weight, bias,
            batchStatistics, averagingFactor, eps);
    }

    /// <inheritdoc />
    protected override void ValidateInputDimensions(Tensor input)
    {
        if (input.ndim != 4) throw new ArgumentException($"BatchNorm2d expects 4-D input [N, C, H, W]; got {input.ndim}-D.");
    }
}
