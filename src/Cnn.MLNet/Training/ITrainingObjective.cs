using Cnn.Backbones.Models;
using Cnn.MLNet.Data;
using static TorchSharp.torch;

namespace Cnn.MLNet.Training;

/// <summary>
/// What a <see cref="TrainingLoop"/> optimises, as timm's tasks plug into one training loop: the objective owns its data
/// (training batches, validation), its loss and its per-epoch report; the loop owns everything else (optimizer, schedule,
/// cancellation, the NaN check, best-epoch restore, early stopping).
/// </summary>
/// <typeparam name="TBatch">What one step trains on: prepared images (<see cref="ImageBatch"/>) or cached features.</typeparam>
internal interface ITrainingObjective<TBatch> where TBatch : ITrainingBatch
{
    /// <summary>Optimizer steps of one epoch (the schedule's unit).</summary>
    int StepsPerEpoch { get; }

    /// <summary>Training images skipped as corrupt so far.</summary>
    long SkippedCount { get; }

    /// <summary>
    /// The training batches of one epoch (0-based), shuffled and augmented as the options say. Starts the epoch's statistics;
    /// the objective keeps whatever else it needs per batch (a teacher's view of the same images) until the next batch.
    /// </summary>
    IEnumerable<TBatch> Batches(int epoch, CancellationToken token);

    /// <summary>
    /// The network's input for <paramref name="batch"/> on the training device, mixed as <paramref name="mix"/> says (the objective
    /// mixes whatever else it feeds, such as a teacher's view, the same way and remembers λ for <see cref="Loss"/>).
    /// </summary>
    Tensor Input(TBatch batch, MixDecision mix);

    /// <summary>The network's training output on <paramref name="input"/> (with gradient): <see cref="Backbone.ForwardTrain"/> for images.</summary>
    TrainingOutput Forward(Backbone model, Tensor input);

    /// <summary>
    /// The loss of the batch last given to <see cref="Input"/> given the network's training output (with gradient); records the
    /// objective's statistics.
    /// </summary>
    Tensor Loss(TrainingOutput output, TBatch batch);

    /// <summary>The model's score on the validation data in eval mode, or null when there is none.</summary>
    ValidationScore? Validate(Backbone model, CancellationToken token);

    /// <summary>Reports a finished epoch (the options' callback) and returns its log line.</summary>
    string CompleteEpoch(EpochSummary summary);
}

/// <summary>An objective that trains on prepared image batches (fine-tuning, distillation).</summary>
internal interface ITrainingObjective : ITrainingObjective<ImageBatch>;

/// <summary>One step's data: how many examples it holds (0 when every image of the batch was skipped as corrupt).</summary>
internal interface ITrainingBatch
{
    /// <summary>Examples in the batch.</summary>
    int Count { get; }
}

/// <summary>A model's score on validation data.</summary>
/// <param name="Loss">Mean loss per image (the objective's loss in eval mode).</param>
/// <param name="Accuracy">Accuracy on the labelled images, or null when none is labelled.</param>
internal sealed record ValidationScore(double Loss, double? Accuracy);

/// <summary>What the loop measured over one epoch.</summary>
/// <param name="Epoch">1-based epoch number.</param>
/// <param name="TrainLoss">Mean training loss per image.</param>
/// <param name="Images">Images trained on.</param>
/// <param name="LearningRate">Learning rate at the epoch's last step.</param>
/// <param name="ImagesPerSecond">Training throughput, data loading included, validation excluded.</param>
/// <param name="Elapsed">Wall time of the epoch, validation included.</param>
/// <param name="Validation">The validation score, or null without validation data.</param>
/// <param name="SkippedImages">Training images skipped as corrupt so far.</param>
internal sealed record EpochSummary(int Epoch, double TrainLoss, long Images, double LearningRate, double ImagesPerSecond, TimeSpan Elapsed,
    ValidationScore? Validation, long SkippedImages);
