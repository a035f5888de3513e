using System.Diagnostics;
using Cnn.MLNet.Mapping;
using Cnn.MLNet.Networks;
using Microsoft.ML.Runtime;
using static TorchSharp.torch;

namespace Cnn.MLNet.Training;

/// <summary>
/// The one training loop of fine-tuning and distillation: epochs of the objective's prefetched batches; AdamW or SGD over the
/// trainable parameters with warm-up and the chosen decay; cancellation within one batch; NaN/Inf detection; validation,
/// early stopping and best-epoch restore; per-epoch logging through the ML.NET host. What is optimised is the
/// <see cref="ITrainingObjective"/>'s business.
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
    /// Trains <paramref name="network"/>'s parameters that require a gradient, restores the best validation epoch's weights when
    /// there is validation data, makes every parameter trainable again and leaves the network in eval mode.
    /// </summary>
    /// <exception cref="InvalidOperationException">Every parameter is frozen, or no training image could be used in an epoch.</exception>
    /// <exception cref="TrainingDivergedException">The loss became NaN or infinite.</exception>
    /// <exception cref="OperationCanceledException">The run was cancelled.</exception>
    public void Run(CnnNetwork network, ITrainingObjective objective)
    {
        var o = _options;
        var token = _cancellation.Token;
        var model = network.Model;
        var trainable = model.parameters().Where(p => p.requires_grad).ToList();
        if (trainable.Count == 0)
            throw new InvalidOperationException("Every parameter is frozen: nothing would train. Use a smaller FreezeUpToStage or FreezeMode.Backbone.");
        using var optimizer = OptimizationSetup.CreateOptimizer(o, trainable);
        var schedule = OptimizationSetup.Schedule(o, objective.StepsPerEpoch);
        using var best = new BestEpochTracker(o.EarlyStoppingMetric);
        long step = 0;
        int batches = objective.StepsPerEpoch;
        for (int epoch = 1; epoch <= o.Epochs; epoch++)
        {
            var clock = Stopwatch.StartNew();
            model.train();
            double lossSum = 0;
            long seen = 0;
            int batchIndex = 0;
            double rate = schedule.RateAt(step);
            foreach (var batch in objective.Batches(epoch - 1, token))
            {
                _cancellation.ThrowIfCancellationRequested();
                batchIndex++;
                if (batch.Count == 0) continue;
                rate = schedule.RateAt(step++);
                OptimizationSetup.SetLearningRate(optimizer, rate);
                using var scope = NewDisposeScope();
                var output = model.ForwardTrain(batch.ToTensor().to(network.Device));
                var loss = objective.Loss(output, batch);
                double value = loss.item<float>();
                if (!double.IsFinite(value))
                    throw new TrainingDivergedException(epoch, batchIndex, value, rate);
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
                lossSum += value * batch.Count;
                seen += batch.Count;
                o.BatchCompleted?.Invoke(new BatchProgress(epoch, o.Epochs, batchIndex, batches, seen, lossSum / seen, clock.Elapsed));
            }
            if (seen == 0)
                throw new InvalidOperationException("No training image could be used in this epoch (all were skipped as corrupt?).");
            double trainSeconds = clock.Elapsed.TotalSeconds;
            var validation = objective.Validate(model, token);
            string line = objective.CompleteEpoch(new EpochSummary(epoch, lossSum / seen, seen, rate, seen / Math.Max(trainSeconds, 1e-9), clock.Elapsed, validation, objective.SkippedCount));
            _channel?.Info(MessageSensitivity.None, line);
            if (objective.SkippedCount > 0)
                _channel?.Warning(MessageSensitivity.None, $"{objective.SkippedCount} corrupt training images skipped so far.");
            if (validation is null) continue;
            if (best.Offer(epoch, validation, model)) continue;
            if (o.EarlyStoppingPatience is { } patience && epoch - best.Epoch >= patience)
            {
                _channel?.Info(MessageSensitivity.None, $"Early stopping after epoch {epoch}: no improvement since epoch {best.Epoch}.");
                break;
            }
        }
        best.Restore(model);
        foreach (var p in model.parameters()) p.requires_grad = true;
        model.eval();
    }
}
