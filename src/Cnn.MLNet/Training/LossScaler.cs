using Cnn.Backbones.Native;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.MLNet.Training;

/// <summary>
/// Dynamic loss scaling for float16 training, with the defaults and rules of PyTorch's <c>GradScaler</c>: the loss is multiplied
/// by the scale before backward (so small float16 gradients do not flush to zero); before the step the gradients are divided
/// by it and checked; a step with an infinite or NaN gradient is skipped and the scale halved; after 2,000 finite steps in a
/// row the scale doubles. bfloat16 has float32's exponent range and needs none of this.
/// </summary>
internal sealed class LossScaler
{
    /// <summary>PyTorch's <c>init_scale</c>.</summary>
    public const double InitialScale = 65536;

    /// <summary>PyTorch's <c>growth_interval</c>: finite steps in a row before the scale grows.</summary>
    public const int GrowthInterval = 2000;

    private int _finiteSteps;

    /// <summary>The current scale.</summary>
    public double Scale { get; private set; } = InitialScale;

    /// <summary>Steps skipped so far because a gradient overflowed.</summary>
    public long SkippedSteps { get; private set; }

    /// <summary>The loss to call backward on: <paramref name="loss"/> × <see cref="Scale"/>.</summary>
    public Tensor ScaleLoss(Tensor loss) => loss.Times(Scale);

    /// <summary>
    /// Divides every gradient by <see cref="Scale"/> and updates the scale; true when all were finite and the optimizer may step.
    /// After false the caller skips the step (the gradients are cleared here).
    /// </summary>
    /// <param name="parameters">The trained parameters.</param>
    public bool UnscaleAndUpdate(IReadOnlyList<Parameter> parameters)
    {
        bool finite = true;
        using (no_grad())
        {
            foreach (var p in parameters)
            {
                if (p.grad is not { } grad) continue;
                grad.TimesInPlace(1 / Scale);
                if (finite && !grad.isfinite().all().item<bool>()) finite = false;
            }
            if (!finite)
                foreach (var p in parameters) p.grad?.zero_();
        }
        Update(finite);
        return finite;
    }

    /// <summary>PyTorch's <c>_amp_update_scale_</c>: back off ×0.5 on overflow, grow ×2 after <see cref="GrowthInterval"/> finite steps.</summary>
    internal void Update(bool finite)
    {
        if (!finite)
        {
            Scale *= 0.5;
            _finiteSteps = 0;
            SkippedSteps++;
            return;
        }
        if (++_finiteSteps == GrowthInterval)
        {
            Scale *= 2;
            _finiteSteps = 0;
        }
    }
}
