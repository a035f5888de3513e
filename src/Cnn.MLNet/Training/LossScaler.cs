using Cnn.Backbones.Native;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.MLNet.Training;

/// <summary>Where a <see cref="LossScaler"/> stands, kept in checkpoints (PyTorch's <c>GradScaler.state_dict()</c>).</summary>
/// <param name="Scale">The current loss scale.</param>
/// <param name="GrowthTracker">Finite steps in a row since the scale last changed.</param>
internal readonly record struct LossScaleState(double Scale, int GrowthTracker)
{
    /// <summary>Whether a scaler could be in this state at all: a positive finite scale and a non-negative count.</summary>
    public bool IsPlausible => Scale > 0 && !double.IsInfinity(Scale) && GrowthTracker >= 0;
}

/// <summary>
/// Dynamic loss scaling for float16 training, with the defaults and rules of PyTorch's <c>GradScaler</c> (checked at test time
/// against libtorch's own kernels, <c>_amp_foreach_non_finite_check_and_unscale_</c> and <c>_amp_update_scale_</c>): the loss is
/// multiplied by the scale before backward (so small float16 gradients do not flush to zero); before the step the gradients are
/// checked for infinities and NaNs and multiplied by the scale's reciprocal; a step with a non-finite gradient is skipped and
/// the scale halved; after <see cref="GrowthInterval"/> finite steps in a row the scale doubles. One host synchronisation per
/// step (the verdict of all gradients together), not one per parameter. bfloat16 has float32's exponent range and needs none
/// of this.
/// </summary>
internal sealed class LossScaler
{
    /// <summary>PyTorch's <c>init_scale</c>.</summary>
    public const double DefaultInitialScale = 65536;

    /// <summary>PyTorch's <c>growth_interval</c>: finite steps in a row before the scale grows.</summary>
    public const int DefaultGrowthInterval = 2000;

    /// <summary>PyTorch's <c>growth_factor</c>.</summary>
    public const double GrowthFactor = 2.0;

    /// <summary>PyTorch's <c>backoff_factor</c>.</summary>
    public const double BackoffFactor = 0.5;

    /// <summary>A scaler at PyTorch's defaults, or with another initial scale and growth interval.</summary>
    public LossScaler(double initialScale = DefaultInitialScale, int growthInterval = DefaultGrowthInterval)
    {
        if (!(initialScale > 0) || !float.IsFinite((float)initialScale))
            throw new ArgumentOutOfRangeException(nameof(initialScale), initialScale, "The initial loss scale must be a positive number within float32's range.");
        ArgumentOutOfRangeException.ThrowIfLessThan(growthInterval, 1);
        Scale = (float)initialScale;
        GrowthInterval = growthInterval;
    }

    /// <summary>Finite steps in a row before the scale grows.</summary>
    public int GrowthInterval { get; }

    /// <summary>The current scale.</summary>
    public double Scale { get; private set; }

    /// <summary>Finite steps in a row since the scale last changed (PyTorch's <c>_growth_tracker</c>).</summary>
    public int GrowthTracker { get; private set; }

    /// <summary>Steps skipped so far because a gradient overflowed.</summary>
    public long SkippedSteps { get; private set; }

    /// <summary>The scale and growth tracker, for a checkpoint.</summary>
    public LossScaleState State => new(Scale, GrowthTracker);

    /// <summary>Continues from a checkpoint's <paramref name="state"/>.</summary>
    /// <exception cref="InvalidDataException">The state cannot come from a scaler of this growth interval.</exception>
    public void Restore(LossScaleState state)
    {
        if (!state.IsPlausible || state.GrowthTracker >= GrowthInterval)
            throw new InvalidDataException($"Loss scale state ({state.Scale}, {state.GrowthTracker} finite steps) is not one a scaler with growth interval {GrowthInterval} reaches.");
        Scale = state.Scale;
        GrowthTracker = state.GrowthTracker;
    }

    /// <summary>The loss to call backward on: <paramref name="loss"/> × <see cref="Scale"/>.</summary>
    public Tensor ScaleLoss(Tensor loss) => loss.Times(Scale);

    /// <summary>
    /// Checks every gradient for infinities and NaNs, multiplies it by the scale's reciprocal (float32, as PyTorch's
    /// <c>inv_scale</c>) and updates the scale; true when all were finite and the optimizer may step. After false the caller
    /// skips the step (the gradients are cleared here).
    /// </summary>
    /// <param name="parameters">The trained parameters.</param>
    public bool UnscaleAndUpdate(IReadOnlyList<Parameter> parameters)
    {
        bool finite = true;
        using (NewDisposeScope())
        using (no_grad())
        {
            double inverse = (float)(1 / Scale);
            Tensor? nonFinite = null;
            foreach (var p in parameters)
            {
                if (p.grad is not { } grad) continue;
                var found = grad.isfinite().logical_not_().any();
                nonFinite = nonFinite is null ? found : nonFinite.logical_or_(found);
                grad.TimesInPlace(inverse);
            }
            if (nonFinite is not null && nonFinite.item<bool>())
            {
                finite = false;
                foreach (var p in parameters) p.grad?.zero_();
            }
        }
        Update(finite);
        return finite;
    }

    /// <summary>PyTorch's <c>_amp_update_scale_</c>: back off on overflow, grow after <see cref="GrowthInterval"/> finite steps.</summary>
    internal void Update(bool finite)
    {
        if (!finite)
        {
            Scale = (float)(Scale * BackoffFactor); // PyTorch's scale is a float32 tensor
            GrowthTracker = 0;
            SkippedSteps++;
            return;
        }
        if (++GrowthTracker == GrowthInterval)
        {
            // PyTorch grows only while the grown scale stays finite in float32, its scale's type.
            float grown = (float)(Scale * GrowthFactor);
            if (float.IsFinite(grown)) Scale = grown;
            GrowthTracker = 0;
        }
    }
}
