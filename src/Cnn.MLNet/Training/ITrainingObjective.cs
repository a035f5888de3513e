using Cnn.Backbones.Models;
using Cnn.MLNet.Data;
using static TorchSharp.torch;

namespace Cnn.MLNet.Training;

/// <summary>
/// What a <see cref="TrainingLoop"/> optimises, as timm's <c>TrainingTask</c> plugs into one training loop: one call per step
/// takes a batch (with its mix decision) and returns the loss and the logits (<c>TrainingTask.forward(input, target)</c>). The
/// objective keeps its epoch's statistics for its report, nothing from one call to the next; the batches and the validation are
/// the loop's other collaborators (<see cref="TrainingSetup{TBatch}"/>).
/// </summary>
/// <typeparam name="TBatch">What one step trains on: prepared images (<see cref="ImageBatch"/>), cached features, a student's and teacher's views.</typeparam>
internal interface ITrainingObjective<TBatch> where TBatch : ITrainingBatch
{
    /// <summary>Starts an epoch's statistics.</summary>
    void BeginEpoch();

    /// <summary>
    /// The network's training forward pass on <paramref name="batch"/> (mixed as <paramref name="mix"/> says, together with
    /// whatever else the objective feeds, such as a teacher's view) and its loss, with gradient; adds to the epoch's statistics.
    /// </summary>
    StepResult Step(Backbone model, TBatch batch, MixDecision mix);

    /// <summary>Reports a finished epoch (the options' callback) and returns its log line.</summary>
    string CompleteEpoch(EpochSummary summary);
}

/// <summary>What one training step computed.</summary>
/// <param name="Loss">The scalar loss to minimise (with gradient).</param>
/// <param name="Logits">The network's main logits on the batch.</param>
internal readonly record struct StepResult(Tensor Loss, Tensor Logits);

/// <summary>The training batches of each epoch: the loop's first collaborator.</summary>
/// <typeparam name="TBatch">What one step trains on.</typeparam>
internal interface IBatchSource<TBatch> where TBatch : ITrainingBatch
{
    /// <summary>Batches of one epoch (the schedule's unit, before gradient accumulation).</summary>
    int BatchesPerEpoch { get; }

    /// <summary>Training images skipped as corrupt so far.</summary>
    long SkippedCount { get; }

    /// <summary>The training batches of epoch <paramref name="epoch"/> (0-based), shuffled and augmented as the options say.</summary>
    IEnumerable<TBatch> Epoch(int epoch, CancellationToken token);
}

/// <summary>Scores a model on validation data: the loop's other collaborator.</summary>
internal interface IValidation
{
    /// <summary>The model's score on the validation data in eval mode, or null when there is none.</summary>
    ValidationScore? Validate(Backbone model, CancellationToken token);
}

/// <summary>What a <see cref="TrainingLoop"/> runs: the batches, the objective and the validation (null without validation data).</summary>
/// <typeparam name="TBatch">What one step trains on.</typeparam>
/// <param name="Batches">The training batches.</param>
/// <param name="Objective">The one-call step and the epoch report.</param>
/// <param name="Validation">The validation, or null.</param>
internal sealed record TrainingSetup<TBatch>(IBatchSource<TBatch> Batches, ITrainingObjective<TBatch> Objective, IValidation? Validation)
    where TBatch : ITrainingBatch;

/// <summary>One step's data: how many examples it holds (0 when every image of the batch was skipped as corrupt).</summary>
internal interface ITrainingBatch
{
    /// <summary>Examples in the batch.</summary>
    int Count { get; }
}

/// <summary>A model's score on validation data.</summary>
/// <param name="Loss">Mean loss per image (the objective's loss in eval mode).</param>
/// <param name="Accuracy">Accuracy on the labelled images, or null when none is labelled.</param>
/// <param name="Agreement">For distillation, the fraction of images where the student's prediction agrees with the teacher's; otherwise null.</param>
internal sealed record ValidationScore(double Loss, double? Accuracy, double? Agreement = null);

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
