using Cnn.MLNet.Networks;
using static TorchSharp.torch;

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

    /// <summary>Runs the sweep on a built network with the objective's batches; the network's weights change (throw it away after).</summary>
    public static LearningRateFinderResult Run(CnnNetwork network, ITrainingObjective objective, CnnFitOptions fit, LearningRateFinderOptions o, Mapping.FitCancellation cancellation)
    {
        var model = network.Model;
        var groups = ParameterGroups.Build(model, fit, RateSpread.None);
        if (groups.Count == 0)
            throw new InvalidOperationException("Every parameter is frozen: nothing would train. Use a smaller FreezeUpToStage or FreezeMode.Backbone.");
        using var optimizer = OptimizationSetup.CreateOptimizer(fit, groups);
        var rates = new List<double>();
        var losses = new List<double>();
        double best = double.PositiveInfinity, average = 0;
        bool diverged = false;
        model.train();
        for (int epoch = 0; rates.Count < o.Steps && !diverged; epoch++)
        {
            bool any = false;
            foreach (var batch in objective.Batches(epoch, cancellation.Token))
            {
                cancellation.ThrowIfCancellationRequested();
                if (batch.Count == 0) continue;
                any = true;
                double rate = RateAt(o, rates.Count);
                OptimizationSetup.SetLearningRate(optimizer, groups, rate);
                using var scope = NewDisposeScope();
                var loss = objective.Loss(objective.Forward(model, objective.Input(batch, new MixDecision(1, null))), batch);
                double value = loss.item<float>();
                rates.Add(rate);
                losses.Add(value);
                average = o.Smoothing * average + (1 - o.Smoothing) * value;
                double smoothed = average / (1 - Math.Pow(o.Smoothing, rates.Count));
                if (!double.IsFinite(value) || smoothed > o.DivergenceFactor * best)
                {
                    diverged = true;
                    break;
                }
                best = Math.Min(best, smoothed);
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
                if (rates.Count == o.Steps) break;
            }
            if (!any) throw new InvalidOperationException("No training image could be used (all were skipped as corrupt?).");
        }
        var smoothedLosses = Smooth(losses, o.Smoothing);
        int kept = diverged ? rates.Count - 1 : rates.Count; // the diverged step's loss is shown, not suggested from
        return new LearningRateFinderResult(rates, losses, smoothedLosses, Suggest(rates.Take(Math.Max(kept, 0)).ToList(), smoothedLosses.Take(Math.Max(kept, 0)).ToList()), diverged);
    }
}
