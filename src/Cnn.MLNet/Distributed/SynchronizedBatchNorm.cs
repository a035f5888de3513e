using Cnn.Backbones.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.MLNet.Distributed;

/// <summary>
/// Synchronised BatchNorm (PyTorch's <c>SyncBatchNorm</c>) for every BatchNorm of a model while it trains as one rank of several: in
/// training mode each BatchNorm normalises with the mean and (biased) variance of the whole global batch, every rank's images
/// together, and updates its running statistics with them (the unbiased variance, as BatchNorm does); the gradients flow through
/// the shared statistics to every rank (<see cref="DifferentiableAllreduce"/>), so N ranks of batch B compute what one process
/// of batch N·B computes. Eval mode is untouched. The statistics take two allreduces per layer and forward pass (the sum, then
/// the squared deviations from the global mean, in float64, as precise as a one-process BatchNorm), and two in the backward pass.
/// </summary>
/// <remarks>
/// TorchSharp's BatchNorm cannot be subclassed, and a module held in a field cannot be swapped, so this attaches hooks: before the
/// layer runs its momentum is set to 0 (its own, per-rank update of the running statistics then changes nothing), and after it
/// its output is replaced by the synchronised one (the per-rank output is computed and discarded: BatchNorm is a small part of a
/// step). State-dict keys, saving and everything outside training are as without it. Dispose removes the hooks.
/// </remarks>
internal sealed class SynchronizedBatchNorm : IDisposable
{
    private readonly ICommunicator _communicator;
    private readonly List<Action> _removals = [];
    private readonly Dictionary<NormBase, double?> _momentum = [];

    public SynchronizedBatchNorm(nn.Module model, ICommunicator communicator)
    {
        _communicator = communicator;
        foreach (var norm in model.modules().OfType<BatchNorm>())
        {
            var before = norm.register_forward_pre_hook(BeforeForward);
            var after = norm.register_forward_hook(AfterForward);
            _removals.Add(before.remove);
            _removals.Add(after.remove);
            Layers++;
        }
    }

    /// <summary>The BatchNorm layers synchronised.</summary>
    public int Layers { get; }

    private Tensor BeforeForward(nn.Module<Tensor, Tensor> module, Tensor input)
    {
        var norm = (NormBase)module;
        if (norm.training && norm.running_mean is not null)
        {
            _momentum[norm] = norm.momentum;
            norm.momentum = 0;
        }
        return null!; // null: the input unchanged
    }

    private Tensor AfterForward(nn.Module<Tensor, Tensor> module, Tensor input, Tensor output)
    {
        var norm = (NormBase)module;
        if (!norm.training) return null!; // null: the output unchanged
        using var scope = NewDisposeScope();
        // 16-bit activations (mixed precision) are normalised in float32, as BatchNorm does; float32 and float64 in their own type.
        var type = input.dtype is ScalarType.BFloat16 or ScalarType.Float16 ? ScalarType.Float32 : input.dtype;
        var x = input.dtype == type ? input : input.to(type); // never a second handle on the caller's tensor in this scope
        long channels = x.shape[1];
        long[] reduced = [0, .. Enumerable.Range(2, (int)x.dim() - 2).Select(d => (long)d)];
        long[] perChannel = [1, channels, .. Enumerable.Repeat(1L, (int)x.dim() - 2)];

        // Pass 1: the global mean (the count travels in the same allreduce).
        var local = cat([x.sum(reduced).to(ScalarType.Float64), tensor(new double[] { x.numel() / channels }, ScalarType.Float64)]);
        var sums = DifferentiableAllreduce.Sum(local, _communicator);
        double count = sums[channels].item<double>();
        var mean = sums.narrow(0, 0, channels).DividedBy(count).to(type);
        // Pass 2: the global variance, from the deviations from the global mean.
        var deviation = x - mean.view(perChannel);
        var squares = DifferentiableAllreduce.Sum((deviation * deviation).sum(reduced).to(ScalarType.Float64), _communicator);
        var variance = squares.DividedBy(count);
        var y = deviation * variance.Plus(norm.eps).rsqrt().to(type).view(perChannel);
        if (norm.weight is { } weight) y = y * weight.view(perChannel);
        if (norm.bias is { } bias) y = y.Plus(bias.view(perChannel));

        if (norm.running_mean is { } runningMean && norm.running_var is { } runningVar)
        {
            double? momentum = _momentum.Remove(norm, out var saved) ? saved : norm.momentum;
            norm.momentum = momentum;
            // momentum null: the cumulative average of BatchNorm (the counter has already been incremented by this pass).
            double factor = momentum ?? 1.0 / Math.Max(1, norm.num_batches_tracked?.item<long>() ?? 1);
            using (no_grad())
            {
                var unbiased = variance.Times(count / Math.Max(1, count - 1)).to(runningVar.dtype);
                runningMean.TimesInPlace(1 - factor).PlusInPlace(mean.detach().to(runningMean.dtype).Times(factor));
                runningVar.TimesInPlace(1 - factor).PlusInPlace(unbiased.detach().Times(factor));
            }
        }
        return y.to(output.dtype).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        foreach (var remove in _removals) remove();
        _removals.Clear();
    }
}
