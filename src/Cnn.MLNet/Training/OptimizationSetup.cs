using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using TorchSharp;
using TorchSharp.Modules;

namespace Cnn.MLNet.Training;

/// <summary>The parts of a training run that fine-tuning and distillation set up alike from their <see cref="CnnFitOptions"/>.</summary>
internal static class OptimizationSetup
{
    /// <summary>AdamW (β 0.9/0.999, ε 1e-8) or SGD with momentum over <paramref name="parameters"/>, with decoupled weight decay.</summary>
    public static torch.optim.Optimizer CreateOptimizer(CnnFitOptions options, IEnumerable<Parameter> parameters) =>
        options.Optimizer == CnnOptimizer.Sgd
            ? torch.optim.SGD(parameters, options.LearningRate, options.Momentum, 0, options.WeightDecay, false, false)
            : torch.optim.AdamW(parameters, options.LearningRate, 0.9, 0.999, 1e-8, options.WeightDecay, false, false);

    /// <summary>Shuffled, optionally augmented training batches of <paramref name="sampleCount"/> images.</summary>
    public static ImageBatcherOptions TrainingBatches(CnnFitOptions options, int sampleCount) => new()
    {
        BatchSize = options.BatchSize, Augment = options.Augment, Shuffle = true, Seed = options.Seed, SkipCorruptImages = options.SkipCorruptImages,
        // A last batch of one image breaks BatchNorm in training mode; drop the remainder when it would be that small.
        DropLast = sampleCount % options.BatchSize == 1 && sampleCount > options.BatchSize,
    };

    /// <summary>The training batcher of a network fed by <paramref name="preprocess"/>: its augmentation at the options' crop scale.</summary>
    public static ImageBatcher TrainingBatcher(CnnFitOptions options, PreprocessOptions preprocess, int sampleCount) =>
        new(new ImagePreprocessor(preprocess with { MinScale = options.AugmentMinScale }), TrainingBatches(options, sampleCount));

    /// <summary>Batches for evaluation: in order, not augmented, the options' batch size and corrupt-image policy.</summary>
    public static ImageBatcher EvaluationBatcher(CnnFitOptions options, PreprocessOptions preprocess) =>
        new(new ImagePreprocessor(preprocess), new ImageBatcherOptions { BatchSize = options.BatchSize, SkipCorruptImages = options.SkipCorruptImages });

    /// <summary>The run's learning-rate schedule: warm-up then the chosen shape, over every step of every epoch.</summary>
    public static LearningRateSchedule Schedule(CnnFitOptions options, int stepsPerEpoch) =>
        new(options.LearningRate, (long)stepsPerEpoch * options.Epochs, (long)Math.Round(options.WarmupEpochs * stepsPerEpoch), options.Schedule);

    /// <summary>Sets every parameter group's learning rate.</summary>
    public static void SetLearningRate(torch.optim.Optimizer optimizer, double rate)
    {
        foreach (var group in optimizer.ParamGroups) group.LearningRate = rate;
    }
}
