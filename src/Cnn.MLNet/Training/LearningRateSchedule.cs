namespace Cnn.MLNet.Training;

/// <summary>How the learning rate changes over training.</summary>
public enum LearningRateScheduleKind
{
    /// <summary>Constant after warm-up.</summary>
    Constant,

    /// <summary>
    /// Cosine decay from the base rate towards the minimum over the steps after warm-up, as PyTorch's <c>CosineAnnealingLR</c>
    /// (<c>T_max</c> = those steps) stepped once per batch: the last step's rate is still above the minimum.
    /// </summary>
    Cosine,

    /// <summary>
    /// PyTorch's <c>OneCycleLR</c> (cosine annealing, two phases): from base/25 up to the base rate over the first 30% of the
    /// steps, then down to base/25/10⁴. Warm-up epochs are not used: the first phase is the warm-up.
    /// </summary>
    OneCycle,
}

/// <summary>
/// Learning rate per optimizer step, with PyTorch's values: linear warm-up (<c>LinearLR</c> from 1/W of the rate) then constant
/// or cosine decay (<c>CosineAnnealingLR</c>), chained as <c>SequentialLR</c> does; or <c>OneCycleLR</c>. The tests compare every
/// step with PyTorch's schedulers.
/// </summary>
public sealed class LearningRateSchedule
{
    /// <summary>OneCycleLR's <c>div_factor</c>: the first rate is the base rate divided by it.</summary>
    public const double OneCycleDivFactor = 25;

    /// <summary>OneCycleLR's <c>final_div_factor</c>: the last rate is the first one divided by it.</summary>
    public const double OneCycleFinalDivFactor = 1e4;

    /// <summary>OneCycleLR's <c>pct_start</c>: the fraction of the steps spent rising.</summary>
    public const double OneCyclePctStart = 0.3;

    /// <summary>Creates a schedule.</summary>
    /// <param name="baseRate">Peak learning rate, reached at the end of warm-up (the one-cycle's maximum).</param>
    /// <param name="totalSteps">Total optimizer steps of the run.</param>
    /// <param name="warmupSteps">Steps of linear warm-up (0 for none; not used by <see cref="LearningRateScheduleKind.OneCycle"/>).</param>
    /// <param name="kind">Shape after warm-up.</param>
    /// <param name="minRate">The rate the cosine decays towards (<c>eta_min</c>).</param>
    public LearningRateSchedule(double baseRate, long totalSteps, long warmupSteps, LearningRateScheduleKind kind, double minRate = 0)
    {
        if (!(baseRate > 0) || !double.IsFinite(baseRate)) throw new ArgumentOutOfRangeException(nameof(baseRate), baseRate, "The learning rate must be a positive number.");
        if (totalSteps < 1) throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, "Training needs at least one step.");
        if (warmupSteps < 0) throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmupSteps, "Warm-up steps cannot be negative.");
        if (minRate < 0 || minRate > baseRate) throw new ArgumentOutOfRangeException(nameof(minRate), minRate, "The minimum rate must lie in [0, base rate].");
        if (!Enum.IsDefined(kind)) throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown schedule.");
        BaseRate = baseRate;
        TotalSteps = totalSteps;
        WarmupSteps = kind == LearningRateScheduleKind.OneCycle ? 0 : Math.Min(warmupSteps, totalSteps);
        Kind = kind;
        MinRate = minRate;
    }

    /// <summary>Peak learning rate.</summary>
    public double BaseRate { get; }

    /// <summary>Total optimizer steps.</summary>
    public long TotalSteps { get; }

    /// <summary>Warm-up steps.</summary>
    public long WarmupSteps { get; }

    /// <summary>Shape after warm-up.</summary>
    public LearningRateScheduleKind Kind { get; }

    /// <summary>The rate the cosine decays towards.</summary>
    public double MinRate { get; }

    /// <summary>The rate for 0-based optimizer step <paramref name="step"/>.</summary>
    public double RateAt(long step)
    {
        if (Kind == LearningRateScheduleKind.OneCycle) return OneCycleRate(step);
        if (step < WarmupSteps)
            return BaseRate * (step + 1) / WarmupSteps;
        if (Kind == LearningRateScheduleKind.Constant)
            return BaseRate;
        long decaySteps = TotalSteps - WarmupSteps;
        double progress = Math.Min(step - WarmupSteps, decaySteps) / (double)Math.Max(decaySteps, 1);
        return MinRate + 0.5 * (BaseRate - MinRate) * (1 + Math.Cos(Math.PI * progress));
    }

    private double OneCycleRate(long step)
    {
        double initial = BaseRate / OneCycleDivFactor, final = initial / OneCycleFinalDivFactor;
        double riseEnd = OneCyclePctStart * TotalSteps - 1, fallEnd = TotalSteps - 1;
        step = Math.Min(step, TotalSteps - 1);
        return step <= riseEnd
            ? Anneal(initial, BaseRate, step / riseEnd)
            : Anneal(BaseRate, final, (step - riseEnd) / (fallEnd - riseEnd));
    }

    private static double Anneal(double start, double end, double fraction) =>
        end + (start - end) / 2 * (Math.Cos(Math.PI * fraction) + 1);
}
