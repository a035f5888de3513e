using Cnn.Backbones.Optimizers;
using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using TorchSharp;
using TorchSharp.Modules;

namespace Cnn.MLNet.Training;

/// <summary>The parts of a training run that fine-tuning and distillation set up alike from their <see cref="CnnFitOptions"/>.</summary>
internal static class OptimizationSetup
{
    /// <summary>
    /// AdamW (β 0.9/0.999, ε 1e-8) or SGD with momentum over <paramref name="groups"/>, each with its own decoupled weight decay
    /// and the options' learning rate times its scale; steps that hold their scalars (<see cref="HeldScalarAdamW"/>).
    /// </summary>
    public static torch.optim.Optimizer CreateOptimizer(CnnFitOptions options, IReadOnlyList<ParameterGroup> groups)
    {
        if (options.Optimizer == CnnOptimizer.Sgd)
            return new HeldScalarSgd(groups.Select(g => new SGD.ParamGroup(g.Parameters,
                new SGD.Options { LearningRate = options.LearningRate * g.RateScale, momentum = options.Momentum, dampening = 0, weight_decay = g.WeightDecay, nesterov = false, maximize = false })),
                options.LearningRate, options.Momentum, 0, options.WeightDecay, false, false);
        return new HeldScalarAdamW(groups.Select(g => new AdamW.ParamGroup(g.Parameters,
            new AdamW.Options { LearningRate = options.LearningRate * g.RateScale, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = g.WeightDecay, amsgrad = false, maximize = false })),
            options.LearningRate, 0.9, 0.999, 1e-8, options.WeightDecay, false, false);
    }

    /// <summary>Shuffled, optionally augmented training batches of <paramref name="sampleCount"/> images.</summary>
    /// <remarks>Under mpirun, this rank's shard of every epoch (<see cref="Distributed.DistributedShard"/>).</remarks>
    public static ImageBatcherOptions TrainingBatches(CnnFitOptions options, int sampleCount)
    {
        var (rank, ranks) = Distributed.MpiLaunch.Detect() ?? (0, 1);
        int perRank = Distributed.DistributedShard.Length(sampleCount, ranks);
        return new()
        {
            BatchSize = options.BatchSize, Augment = options.Augment, Shuffle = true, Seed = options.Seed, SkipCorruptImages = options.SkipCorruptImages,
            // A last batch of one image breaks BatchNorm in training mode; drop the remainder when it would be that small.
            DropLast = perRank % options.BatchSize == 1 && perRank > options.BatchSize,
            ShardIndex = rank, ShardCount = ranks,
        };
    }

    /// <summary>The training batcher of a network fed by <paramref name="preprocess"/>: its augmentation at the options' crop scale.</summary>
    public static ImageBatcher TrainingBatcher(CnnFitOptions options, PreprocessOptions preprocess, int sampleCount) =>
        new(new ImagePreprocessor(preprocess with { MinScale = options.AugmentMinScale }), TrainingBatches(options, sampleCount));

    /// <summary>Batches for evaluation: in order, not augmented, the options' batch size and corrupt-image policy.</summary>
    public static ImageBatcher EvaluationBatcher(CnnFitOptions options, PreprocessOptions preprocess) =>
        new(new ImagePreprocessor(preprocess), new ImageBatcherOptions { BatchSize = options.BatchSize, SkipCorruptImages = options.SkipCorruptImages });

    /// <summary>
    /// Decodes each batcher's images once, before the first epoch, and keeps them within one memory budget
    /// (<see cref="DecodedImageCache.DefaultBudget"/>) shared in order: the training images first. A batcher of the same images
    /// as an earlier one that decodes them alike (distillation's teacher and student) reads the earlier one's pixels instead of
    /// keeping a copy (<see cref="ImageBatcher.ShareDecoded"/>). Logs what was kept.
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    public static void KeepDecoded(IEnumerable<(ImageBatcher? Batcher, IReadOnlyList<ImageSample> Samples, string What)> sets, Microsoft.ML.Runtime.IChannel? channel,
        CancellationToken cancellationToken)
    {
        long budget = DecodedImageCache.DefaultBudget;
        var kept = new List<(ImageBatcher Batcher, IReadOnlyList<ImageSample> Samples)>();
        foreach (var (batcher, samples, what) in sets)
        {
            if (batcher is null || samples.Count == 0) continue;
            if (kept.Any(k => ReferenceEquals(k.Samples, samples) && batcher.ShareDecoded(k.Batcher))) continue;
            kept.Add((batcher, samples));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            budget -= batcher.KeepDecoded(samples, budget, cancellationToken);
            var (images, bytes) = batcher.DecodedKept;
            if (images > 0)
                channel?.Info(Microsoft.ML.Runtime.MessageSensitivity.None,
                    $"Decoded the {what} images once for all epochs: {images} of {samples.Count} kept in memory ({bytes / 1048576.0:0.0} MB) in {clock.Elapsed.TotalSeconds:0.0} s.");
        }
    }

    /// <summary>A phase's learning-rate schedule: warm-up then the chosen shape, over every optimizer step of its epochs.</summary>
    /// <param name="options">The run's options (peak rate, warm-up epochs, shape).</param>
    /// <param name="stepsPerEpoch">Optimizer steps per epoch.</param>
    /// <param name="epochs">Epochs of the phase the schedule covers.</param>
    public static LearningRateSchedule Schedule(CnnFitOptions options, int stepsPerEpoch, int epochs) =>
        new(options.LearningRate, (long)stepsPerEpoch * epochs, (long)Math.Round(Math.Min(options.WarmupEpochs, epochs) * stepsPerEpoch), options.Schedule);

    /// <summary>Sets each parameter group's learning rate: <paramref name="rate"/> times the group's scale.</summary>
    public static void SetLearningRate(torch.optim.Optimizer optimizer, IReadOnlyList<ParameterGroup> groups, double rate)
    {
        int i = 0;
        foreach (var group in optimizer.ParamGroups) group.LearningRate = rate * groups[i++].RateScale;
    }
}
