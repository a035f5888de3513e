namespace Cnn.MLNet.Training;

/// <summary>How the learning rate changes over training.</summary>
public enum LearningRateScheduleKind
{
    /// <summary>Constant after warm-up.</summary>
    Constant,

    /// <summary>Cosine decay from the base rate to <c>MinLearningRate</c> over the remaining steps after warm-up (timm/fastai default).</summary>
    Cosine,
}

/// <summary>Learning rate per optimizer step: linear warm-up from 0, then constant or cosine decay.</summary>
public sealed class LearningRateSchedule
{
    /// <summary>Creates a schedule.</summary>
    /// <param name="baseRate">Peak learning rate, reached at the end of warm-up.</param>
    /// <param name="totalSteps">Total optimizer steps of the run.</param>
    /// <param name="warmupSteps">Steps of linear warm-up (0 for none).</param>
    /// <param name="kind">Shape after warm-up.</param>
    /// <param name="minRate">Rate at the last step of a cosine schedule.</param>
    public LearningRateSchedule(double baseRate, long totalSteps, long warmupSteps, LearningRateScheduleKind kind, double minRate = 0)
    {
        if (!(baseRate > 0) || !double.IsFinite(baseRate)) throw new ArgumentOutOfRangeException(nameof(baseRate), baseRate, "The learning rate must be a positive number.");
        if (totalSteps < 1) throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, "Training needs at least one step.");
        if (warmupSteps < 0) throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmupSteps, "Warm-up steps cannot be negative.");
        if (minRate < 0 || minRate > baseRate) throw new ArgumentOutOfRangeException(nameof(minRate), minRate, "The minimum rate must lie in [0, base rate].");
        BaseRate = baseRate;
        TotalSteps = totalSteps;
        WarmupSteps = Math.Min(warmupSteps, totalSteps);
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

    /// <summary>Final rate of the cosine shape.</summary>
    public double MinRate { get; }

    /// <summary>The rate for 0-based optimizer step <paramref name="step"/>.</summary>
    public double RateAt(long step)
    {
        if (step < WarmupSteps)
            return BaseRate * (step + 1) / WarmupSteps;
        if (Kind == LearningRateScheduleKind.Constant)
            return BaseRate;
        long decaySteps = TotalSteps - WarmupSteps;
        if (decaySteps <= 1)
            return BaseRate;
        double progress = Math.Clamp((double)(step - WarmupSteps) / (decaySteps - 1), 0, 1);
        return MinRate + 0.5 * (BaseRate - MinRate) * (1 + Math.Cos(Math.PI * progress));
    }
}
