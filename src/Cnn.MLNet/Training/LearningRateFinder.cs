using Cnn.MLNet.Networks;

namespace Cnn.MLNet.Training;

/// <summary>Options of the learning-rate range test (<see cref="CnnEstimator.FindLearningRate"/>, <c>cnn lr-find</c>).</summary>
public sealed record LearningRateFinderOptions
{
    /// <summary>Learning rate of the first step. Default 1e-7.</summary>
    public double StartLearningRate { get; init; } = 1e-7;

    /// <summary>Learning rate of the last step. Default 10.</summary>
    public double EndLearningRate { get; init; } = 10;

    /// <summary>Steps of the sweep (as many epochs as that takes). Default 100.</summary>
    public int Steps { get; init; } = 100;

    /// <summary>Weight of the running average of the loss (fastai's <c>beta</c>). Default 0.98.</summary>
    public double Smoothing { get; init; } = 0.98;

    /// <summary>Stop once the smoothed loss exceeds this many times its minimum. Default 4.</summary>
    public double DivergenceFactor { get; init; } = 4;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        if (!(StartLearningRate > 0) || !(EndLearningRate > StartLearningRate) || !double.IsFinite(EndLearningRate))
            throw new ArgumentOutOfRangeException(nameof(EndLearningRate), $"The sweep needs 0 < StartLearningRate < EndLearningRate; got {StartLearningRate} and {EndLearningRate}.");
        if (Steps < 5) throw new ArgumentOutOfRangeException(nameof(Steps), Steps, "The sweep needs at least 5 steps.");
        if (!(Smoothing >= 0 && Smoothing < 1)) throw new ArgumentOutOfRangeException(nameof(Smoothing), Smoothing, "Smoothing must be in [0, 1).");
        if (!(DivergenceFactor > 1)) throw new ArgumentOutOfRangeException(nameof(DivergenceFactor), DivergenceFactor, "DivergenceFactor must be > 1.");
    }
}

/// <summary>What the range test measured.</summary>
/// <param name="LearningRates">The rate of each step done.</param>
/// <param name="Losses">The batch loss at each step.</param>
/// <param name="SmoothedLosses">The debiased running average of the losses (fastai's smoothing).</param>
/// <param name="Suggested">The suggested rate (the steepest fall of the smoothed loss), or null when the curve never falls.</param>
/// <param name="Diverged">Whether the sweep stopped early because the loss diverged.</param>
public sealed record LearningRateFinderResult(IReadOnlyList<double> LearningRates, IReadOnlyList<double> Losses, IReadOnlyList<double> SmoothedLosses,
    double? Suggested, bool Diverged);

/// <summary>
/// The learning-rate range test (Smith 2015; fastai's <c>lr_find</c>): one step per batch at exponentially growing rates
/// <c>start · (end/start)^(i/(steps−1))</c>, the loss smoothed by a debiased running average, stopped when it diverges; the
/// suggestion is the rate where the smoothed loss falls fastest against log(rate), before its minimum.
/// </summary>
internal static class LearningRateFinder
{
    /// <summary>The rate of step <paramref name="step"/> of the sweep.</summary>
    public static double RateAt(LearningRateFinderOptions o, int step) =>
        o.StartLearningRate * Math.Pow(o.EndLearningRate / o.StartLearningRate, (double)step / (o.Steps - 1));

    /// <summary>Debiased exponential moving average: <c>avg_i = β·avg_{i−1} + (1−β)·loss_i</c>, reported as <c>avg_i / (1 − β^(i+1))</c>.</summary>
    public static double[] Smooth(IReadOnlyList<double> losses, double beta)
    {
        var smoothed = new double[losses.Count];
        double average = 0;
        for (int i = 0; i < losses.Count; i++)
        {
            average = beta * average + (1 - beta) * losses[i];
            smoothed[i] = average / (1 - Math.Pow(beta, i + 1));
        }
        return smoothed;
    }

    /// <summary>
    /// The rate at the most negative slope of the smoothed loss against log(rate) (central differences, one-sided at the ends,
    /// as numpy's <c>gradient</c>), among the points up to the smoothed minimum; null with fewer than 3 points or no fall.
    /// </summary>
    public static double? Suggest(IReadOnlyList<double> rates, IReadOnlyList<double> smoothed)
    {
        if (smoothed.Count < 3) return null;
        int end = Enumerable.Range(0, smoothed.Count).MinBy(i => smoothed[i]);
        if (end < 1) return null;
        var x = rates.Select(r => Math.Log(r)).ToArray();
        int best = -1;
        double steepest = 0;
        for (int i = 0; i <= end; i++)
        {
            double slope = i == 0 ? (smoothed[1] - smoothed[0]) / (x[1] - x[0])
                : i == smoothed.Count - 1 ? (smoothed[i] - smoothed[i - 1]) / (x[i] - x[i - 1])
                : (smoothed[i + 1] - smoothed[i - 1]) / (x[i + 1] - x[i - 1]);
            if (slope < steepest)
            {
                steepest = slope;
                best = i;
            }
        }
        return best < 0 ? null : rates[best];
    }

    /// <summary>
    /// Runs the sweep through the <see cref="TrainingLoop"/> on a built network with <paramref name="setup"/>'s batches and
    /// objective, the <see cref="LearningRateSweep"/> as its regime; the network's weights change (throw it away after).
    /// </summary>
    public static LearningRateFinderResult Run<TBatch>(CnnNetwork network, TrainingSetup<TBatch> setup, CnnFitOptions fit, LearningRateFinderOptions o,
        Mapping.FitCancellation cancellation) where TBatch : ITrainingBatch
    {
        var sweep = new LearningRateSweep(o);
        new TrainingLoop(fit, sweep, null, cancellation).Run(network, setup with { Validation = null });
        return sweep.Result();
    }
}

/// <summary>
/// The learning-rate range test as a run of the <see cref="TrainingLoop"/>, as fastai's <c>lr_find</c> runs through <c>fit</c>:
/// one phase of the whole model at one rate (no discriminative rates, no freeze epochs), the sweep as its schedule, one update
/// per batch with none of fit's recipe around it; it records each step's rate and loss and ends the run after
/// <see cref="LearningRateFinderOptions.Steps"/> steps or once the smoothed loss diverges (that step is recorded, not taken).
/// </summary>
internal sealed class LearningRateSweep : TrainingRegime
{
    private readonly LearningRateFinderOptions _options;
    private readonly List<double> _rates = [];
    private readonly List<double> _losses = [];
    private double _best = double.PositiveInfinity, _average;
    private bool _diverged;

    /// <param name="options">The sweep.</param>
    public LearningRateSweep(LearningRateFinderOptions options)
    {
        _options = options;
        // Every epoch makes at least one step (or the loop throws), so this many epochs cover the sweep.
        Phases = [new TrainingPhase(options.Steps, false, RateSpread.None)];
    }

    /// <inheritdoc/>
    public override IReadOnlyList<TrainingPhase> Phases { get; }

    /// <inheritdoc/>
    public override bool FullRecipe => false;

    /// <inheritdoc/>
    public override Func<long, double> Schedule(TrainingPhase phase, int updatesPerEpoch) => step => LearningRateFinder.RateAt(_options, (int)step);

    /// <inheritdoc/>
    public override bool Accept(int epoch, int batch, double rate, double loss)
    {
        var o = _options;
        _rates.Add(rate);
        _losses.Add(loss);
        _average = o.Smoothing * _average + (1 - o.Smoothing) * loss;
        double smoothed = _average / (1 - Math.Pow(o.Smoothing, _rates.Count));
        if (!double.IsFinite(loss) || smoothed > o.DivergenceFactor * _best)
        {
            _diverged = true;
            return false;
        }
        _best = Math.Min(_best, smoothed);
        return true;
    }

    /// <inheritdoc/>
    public override bool Finished(long updates) => updates >= _options.Steps;

    /// <summary>What the sweep measured, with its suggestion.</summary>
    public LearningRateFinderResult Result()
    {
        var smoothedLosses = LearningRateFinder.Smooth(_losses, _options.Smoothing);
        int kept = Math.Max(_diverged ? _rates.Count - 1 : _rates.Count, 0); // the diverged step's loss is shown, not suggested from
        return new LearningRateFinderResult(_rates.ToArray(), _losses.ToArray(), smoothedLosses,
            LearningRateFinder.Suggest(_rates.Take(kept).ToList(), smoothedLosses.Take(kept).ToList()), _diverged);
    }
}
