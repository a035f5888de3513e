using System.Diagnostics;
using Cnn.Backbones.Models;
using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using Cnn.MLNet.Mapping;
using Cnn.MLNet.Scoring;
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Training;

/// <summary>
/// Fine-tunes a backbone: epochs of shuffled, augmented, prefetched batches; AdamW or SGD with warm-up and cosine decay;
/// validation, early stopping with best-epoch restore, NaN detection, per-epoch metrics and cancellation within one batch.
/// </summary>
internal sealed class CnnTrainingLoop
{
    private readonly CnnTrainerOptions _options;
    private readonly IChannel? _channel;
    private readonly FitCancellation _cancellation;

    /// <param name="options">The run's options.</param>
    /// <param name="channel">Where progress is logged, or null.</param>
    /// <param name="cancellation">Stops the run before the next batch (the options' token or the MLContext's cancellation).</param>
    public CnnTrainingLoop(CnnTrainerOptions options, IChannel? channel, FitCancellation cancellation)
    {
        _options = options;
        _channel = channel;
        _cancellation = cancellation;
    }

    /// <summary>Trains a new network for <paramref name="classNames"/>.Count classes and returns it in eval mode.</summary>
    public CnnNetwork Train(IReadOnlyList<ImageSample> train, IReadOnlyList<ImageSample>? validation, IReadOnlyList<string> classNames)
    {
        var o = _options;
        var token = _cancellation.Token;
        var device = CnnNetwork.ResolveDevice(o.Device);
        var info = ModelRegistry.Get(o.Architecture);
        var evalPreprocess = CnnNetwork.PreprocessFor(info.DefaultConfig, o.InputChannels, o.ImageSize, o.Mean, o.Std, o.CropPct);
        var modelOptions = new ModelOptions
        {
            NumClasses = classNames.Count, InChannels = o.InputChannels, DropRate = o.DropRate, WeightsPath = o.WeightsPath,
            ImageSize = o.ImageSize, AuxLogits = o.AuxLogits, AuxLossWeight = o.AuxLossWeight, TransformInput = o.TransformInput,
        };
        var network = CnnNetwork.CreateSeeded(o.Seed, o.Architecture, modelOptions, evalPreprocess, device);
        try
        {
            Run(network, train, validation, classNames.Count, device, token);
            network.Model.eval();
            return network;
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    private void Run(CnnNetwork network, IReadOnlyList<ImageSample> train, IReadOnlyList<ImageSample>? validation, int classes, Device device, CancellationToken token)
    {
        var o = _options;
        var model = network.Model;
        ApplyFreeze(model);
        var trainable = model.parameters().Where(p => p.requires_grad).ToList();
        if (trainable.Count == 0)
            throw new InvalidOperationException("Every parameter is frozen: nothing would train. Use a smaller FreezeUpToStage or FreezeMode.Backbone.");
        using var optimizer = OptimizationSetup.CreateOptimizer(o, trainable);

        var trainBatcher = new ImageBatcher(new ImagePreprocessor(network.Preprocess with { MinScale = o.AugmentMinScale }),
            OptimizationSetup.TrainingBatches(o, train.Count));
        var evalBatcher = new ImageBatcher(new ImagePreprocessor(network.Preprocess),
            new ImageBatcherOptions { BatchSize = o.BatchSize, SkipCorruptImages = o.SkipCorruptImages });

        int stepsPerEpoch = trainBatcher.GetBatchCount(train.Count);
        var schedule = OptimizationSetup.Schedule(o, stepsPerEpoch);
        var best = new BestEpochTracker(o.EarlyStoppingMetric);
        long step = 0;
        for (int epoch = 1; epoch <= o.Epochs; epoch++)
        {
            var clock = Stopwatch.StartNew();
            model.train();
            double lossSum = 0;
            long seen = 0, correct = 0;
            int batchIndex = 0;
            double rate = schedule.RateAt(step);
            foreach (var batch in trainBatcher.EnumerateEpoch(train, epoch - 1, token))
            {
                _cancellation.ThrowIfCancellationRequested();
                batchIndex++;
                if (batch.Count == 0) continue;
                rate = schedule.RateAt(step++);
                OptimizationSetup.SetLearningRate(optimizer, rate);
                using var scope = NewDisposeScope();
                var x = batch.ToTensor().to(device);
                var y = batch.LabelsToTensor().to(device);
                var output = model.ForwardTrain(x);
                var logits = output.Logits;
                var loss = Loss(output, y);
                double value = loss.item<float>();
                if (!double.IsFinite(value))
                    throw new TrainingDivergedException(epoch, batchIndex, value, rate);
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
                lossSum += value * batch.Count;
                seen += batch.Count;
                correct += logits.argmax(1).eq(y).sum().item<long>();
            }
            if (seen == 0)
                throw new InvalidOperationException("No training image could be used in this epoch (all were skipped as corrupt?).");
            double trainSeconds = clock.Elapsed.TotalSeconds;
            (double Loss, double Accuracy)? val = validation is { Count: > 0 } ? Evaluate(model, evalBatcher, validation, device, token) : null;
            var metrics = new EpochMetrics(epoch, lossSum / seen, (double)correct / seen, val?.Loss, val?.Accuracy, rate,
                seen / Math.Max(trainSeconds, 1e-9), clock.Elapsed);
            _channel?.Info(MessageSensitivity.None, metrics.ToString());
            o.EpochCompleted?.Invoke(metrics);
            if (trainBatcher.SkippedCount > 0)
                _channel?.Warning(MessageSensitivity.None, $"{trainBatcher.SkippedCount} corrupt training images skipped so far.");
            if (val is { } v && best.Offer(epoch, v.Loss, v.Accuracy, model))
                continue;
            if (val is not null && o.EarlyStoppingPatience is { } patience && epoch - best.Epoch >= patience)
            {
                _channel?.Info(MessageSensitivity.None, $"Early stopping after epoch {epoch}: no improvement since epoch {best.Epoch}.");
                break;
            }
        }
        best.Restore(model);
        foreach (var p in model.parameters()) p.requires_grad = true;
    }

    /// <summary>
    /// The training loss: cross-entropy of the main logits plus, for each auxiliary head (GoogLeNet's two, Inception v3's one;
    /// present only in training mode), its weight times its cross-entropy.
    /// </summary>
    internal static Tensor Loss(TrainingOutput output, Tensor labels)
    {
        var loss = nn.functional.cross_entropy(output.Logits, labels);
        foreach (var auxiliary in output.Auxiliary)
            loss = loss + auxiliary.Weight * nn.functional.cross_entropy(auxiliary.Logits, labels);
        return loss;
    }

    /// <summary>Mean cross-entropy and accuracy of the model on <paramref name="samples"/> in eval mode.</summary>
    internal static (double Loss, double Accuracy) Evaluate(nn.Module<Tensor, Tensor> model, ImageBatcher batcher, IReadOnlyList<ImageSample> samples, Device device, CancellationToken token)
    {
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var _ = no_grad();
            double lossSum = 0;
            long seen = 0, correct = 0;
            foreach (var batch in batcher.EnumerateEpoch(samples, 0, token))
            {
                if (batch.Count == 0) continue;
                using var scope = NewDisposeScope();
                var x = batch.ToTensor().to(device);
                var y = batch.LabelsToTensor().to(device);
                var logits = model.call(x);
                lossSum += nn.functional.cross_entropy(logits, y, reduction: nn.Reduction.Sum).item<float>();
                correct += logits.argmax(1).eq(y).sum().item<long>();
                seen += batch.Count;
            }
            return seen == 0 ? (double.NaN, 0) : (lossSum / seen, (double)correct / seen);
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    private void ApplyFreeze(Backbone model)
    {
        switch (_options.Freeze)
        {
            case FreezeMode.Backbone:
                string head = model.PretrainedConfig.Classifier;
                model.Freeze(model.StageGroups.Where(g => !g.Contains(head)).Select(g => g.Name).ToArray());
                break;
            case FreezeMode.UpToStage:
                model.FreezeUpTo(_options.FreezeUpToStage);
                break;
        }
    }

    /// <summary>Keeps a CPU copy of the best epoch's weights and restores them at the end.</summary>
    private sealed class BestEpochTracker(EarlyStoppingMetric metric)
    {
        private Dictionary<string, Tensor>? _weights;
        private double _score = double.NegativeInfinity;

        public int Epoch { get; private set; }

        /// <summary>Records the epoch if it is the best so far; returns true when it improved.</summary>
        public bool Offer(int epoch, double loss, double accuracy, nn.Module model)
        {
            double score = metric == EarlyStoppingMetric.ValidationLoss ? -loss : accuracy;
            if (!(score > _score)) return false;
            _score = score;
            Epoch = epoch;
            DisposeWeights();
            _weights = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().to(CPU).clone());
            return true;
        }

        public void Restore(nn.Module model)
        {
            if (_weights is null) return;
            using (no_grad())
            {
                var current = model.state_dict();
                foreach (var (name, value) in _weights)
                    current[name].copy_(value);
            }
            DisposeWeights();
        }

        private void DisposeWeights()
        {
            if (_weights is null) return;
            foreach (var tensor in _weights.Values) tensor.Dispose();
            _weights = null;
        }
    }
}
