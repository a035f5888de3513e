using System.Diagnostics;
using Cnn.MLNet.Mapping;
using Cnn.Backbones.Models;
using Cnn.MLNet.Networks;
using TorchSharp;
using Microsoft.ML.Runtime;
using static TorchSharp.torch;

namespace Cnn.MLNet.Training;

/// <summary>
/// The one training loop of fine-tuning and distillation: phases (fastai's frozen then unfrozen fine-tuning) of epochs of the
/// objective's prefetched batches, mixed (mixup/CutMix) when asked; AdamW or SGD over parameter groups (discriminative rates, no
/// weight decay on norms and biases) with warm-up and the chosen decay, gradient accumulation and clipping; an average of the
/// weights (EMA); cancellation within one batch; NaN/Inf detection; validation, early stopping and best-epoch restore;
/// per-epoch logging through the ML.NET host. What is optimised is the <see cref="ITrainingObjective{TBatch}"/>'s business.
/// </summary>
internal sealed class TrainingLoop
{
    private readonly CnnFitOptions _options;
    private readonly IChannel? _channel;
    private readonly FitCancellation _cancellation;

    /// <param name="options">The run's options (optimizer, schedule, epochs, early stopping).</param>
    /// <param name="channel">Where progress is logged, or null.</param>
    /// <param name="cancellation">Stops the run before the next batch (the options' token or the MLContext's cancellation).</param>
    public TrainingLoop(CnnFitOptions options, IChannel? channel, FitCancellation cancellation)
    {
        _options = options;
        _channel = channel;
        _cancellation = cancellation;
    }

    /// <summary>
    /// Trains <paramref name="network"/>'s parameters that require a gradient, phase by phase (<see cref="TrainingPhase"/>), restores
    /// the best validation epoch's weights when there is validation data (the averaged weights' when they are used), makes every
    /// parameter trainable again and leaves the network in eval mode.
    /// </summary>
    /// <exception cref="InvalidOperationException">Every parameter is frozen, or no training image could be used in an epoch.</exception>
    /// <exception cref="TrainingDivergedException">The loss became NaN or infinite.</exception>
    /// <exception cref="OperationCanceledException">The run was cancelled.</exception>
    public void Run<TBatch>(CnnNetwork network, ITrainingObjective<TBatch> objective) where TBatch : ITrainingBatch
    {
        var o = _options;
        var model = network.Model;
        var phases = TrainingPhase.For(o);
        int totalEpochs = phases.Sum(p => p.Epochs);
        var run = new RunState(new BestEpochTracker(o.EarlyStoppingMetric), o.ModelEmaDecay is { } decay ? new ModelEma(model, decay) : null, totalEpochs);
        try
        {
            foreach (var phase in phases)
            {
                using var frozen = phase.Apply(model);
                if (!RunPhase(network, objective, phase, run)) break;
            }
            run.Best.Restore(model);
            if (run.Ema is { } ema && o.UseModelEmaWeights && run.Best.Epoch == 0) ema.CopyInto(model);
        }
        finally
        {
            run.Best.Dispose();
            run.Ema?.Dispose();
        }
        foreach (var p in model.parameters()) p.requires_grad = true;
        model.eval();
    }

    /// <summary>What lasts across phases: the best epoch, the weight average, the epoch and step counters.</summary>
    private sealed class RunState(BestEpochTracker best, ModelEma? ema, int totalEpochs)
    {
        public BestEpochTracker Best { get; } = best;
        public ModelEma? Ema { get; } = ema;
        public int TotalEpochs { get; } = totalEpochs;
        public int Epoch { get; set; }
    }

    /// <summary>Runs one phase's epochs; false when early stopping ended the run.</summary>
    private bool RunPhase<TBatch>(CnnNetwork network, ITrainingObjective<TBatch> objective, TrainingPhase phase, RunState run) where TBatch : ITrainingBatch
    {
        var o = _options;
        var token = _cancellation.Token;
        var model = network.Model;
        var groups = ParameterGroups.Build(model, o, phase.Spread);
        if (groups.Count == 0)
            throw new InvalidOperationException("Every parameter is frozen: nothing would train. Use a smaller FreezeUpToStage or FreezeMode.Backbone.");
        var trainable = groups.SelectMany(g => g.Parameters).ToList();
        using var optimizer = OptimizationSetup.CreateOptimizer(o, groups);
        int batches = objective.StepsPerEpoch;
        int accumulation = o.AccumulationSteps;
        int updatesPerEpoch = (batches + accumulation - 1) / accumulation;
        var schedule = OptimizationSetup.Schedule(o, updatesPerEpoch, phase.Epochs);
        var mixer = new BatchMixer(o);
        long step = 0;
        for (int phaseEpoch = 1; phaseEpoch <= phase.Epochs; phaseEpoch++)
        {
            int epoch = ++run.Epoch;
            var clock = Stopwatch.StartNew();
            model.train();
            double lossSum = 0;
            long seen = 0;
            int batchIndex = 0, pending = 0;
            double rate = schedule.RateAt(step);
            optimizer.zero_grad();
            foreach (var batch in objective.Batches(epoch - 1, token))
            {
                _cancellation.ThrowIfCancellationRequested();
                batchIndex++;
                if (batch.Count == 0) continue;
                using var scope = NewDisposeScope();
                var input = objective.Input(batch, mixer.Decide(epoch - 1, batchIndex));
                var loss = objective.Loss(objective.Forward(model, input), batch);
                double value = loss.item<float>();
                if (!double.IsFinite(value))
                    throw new TrainingDivergedException(epoch, batchIndex, value, schedule.RateAt(step));
                // Each batch's loss is divided by the size of its accumulation group, so a group's gradient is their mean.
                int groupStart = (batchIndex - 1) / accumulation * accumulation;
                (loss / Math.Min(accumulation, batches - groupStart)).backward();
                pending++;
                if (batchIndex % accumulation == 0 || batchIndex >= batches)
                {
                    rate = Update(optimizer, groups, trainable, schedule, step++, model, run.Ema);
                    pending = 0;
                }
                lossSum += value * batch.Count;
                seen += batch.Count;
                o.BatchCompleted?.Invoke(new BatchProgress(epoch, run.TotalEpochs, batchIndex, batches, seen, lossSum / seen, clock.Elapsed));
            }
            if (pending > 0) rate = Update(optimizer, groups, trainable, schedule, step++, model, run.Ema);
            if (seen == 0)
                throw new InvalidOperationException("No training image could be used in this epoch (all were skipped as corrupt?).");
            double trainSeconds = clock.Elapsed.TotalSeconds;
            var (validation, averaged) = Validate(objective, model, run, token);
            string line = objective.CompleteEpoch(new EpochSummary(epoch, lossSum / seen, seen, rate, seen / Math.Max(trainSeconds, 1e-9), clock.Elapsed, validation, objective.SkippedCount));
            if (averaged is not null)
                line += $" (weight average: val loss {averaged.Loss:0.0000}{(averaged.Accuracy is { } a ? $", val acc {a:P2}" : "")})";
            _channel?.Info(MessageSensitivity.None, line);
            if (objective.SkippedCount > 0)
                _channel?.Warning(MessageSensitivity.None, $"{objective.SkippedCount} corrupt training images skipped so far.");
            if (validation is null) continue;
            if (Offer(run, epoch, validation, model)) continue;
            if (o.EarlyStoppingPatience is { } patience && epoch - run.Best.Epoch >= patience)
            {
                _channel?.Info(MessageSensitivity.None, $"Early stopping after epoch {epoch}: no improvement since epoch {run.Best.Epoch}.");
                return false;
            }
        }
        return true;
    }

    /// <summary>One optimizer step at the schedule's rate for <paramref name="step"/>: clip, step, clear, update the average.</summary>
    private double Update(torch.optim.Optimizer optimizer, IReadOnlyList<ParameterGroup> groups, List<TorchSharp.Modules.Parameter> trainable,
        LearningRateSchedule schedule, long step, Backbone model, ModelEma? ema)
    {
        double rate = schedule.RateAt(step);
        OptimizationSetup.SetLearningRate(optimizer, groups, rate);
        if (_options.ClipGradNorm is { } maxNorm)
            nn.utils.clip_grad_norm_(trainable, maxNorm);
        optimizer.step();
        optimizer.zero_grad();
        ema?.Update(model);
        return rate;
    }

    /// <summary>
    /// The epoch's validation score: of the averaged weights when they are the run's result, otherwise of the trained weights;
    /// and the other one's score (the average's, reported only) when a weight average is kept but not used.
    /// </summary>
    private (ValidationScore? Score, ValidationScore? Averaged) Validate<TBatch>(ITrainingObjective<TBatch> objective, Backbone model, RunState run, CancellationToken token)
        where TBatch : ITrainingBatch
    {
        if (run.Ema is not { } ema) return (objective.Validate(model, token), null);
        ValidationScore? averaged;
        using (ema.SwapInto(model)) averaged = objective.Validate(model, token);
        return _options.UseModelEmaWeights ? (averaged, null) : (objective.Validate(model, token), averaged);
    }

    /// <summary>Offers the epoch to the best-epoch tracker with the weights that were validated; true when it improved.</summary>
    private bool Offer(RunState run, int epoch, ValidationScore validation, Backbone model)
    {
        if (run.Ema is not { } ema || !_options.UseModelEmaWeights) return run.Best.Offer(epoch, validation, model);
        using (ema.SwapInto(model)) return run.Best.Offer(epoch, validation, model);
    }
}
