namespace Cnn.MLNet.Training;

/// <summary>What one training epoch achieved; passed to <see cref="CnnTrainerOptions.EpochCompleted"/> and logged through the ML.NET host.</summary>
/// <param name="Epoch">1-based epoch number.</param>
/// <param name="TrainLoss">Mean training loss over the epoch's batches.</param>
/// <param name="TrainAccuracy">Training accuracy over the epoch (on augmented images).</param>
/// <param name="ValidationLoss">Mean validation loss, or null without a validation set.</param>
/// <param name="ValidationAccuracy">Validation accuracy, or null without a validation set.</param>
/// <param name="LearningRate">Learning rate at the epoch's last step.</param>
/// <param name="ImagesPerSecond">Training throughput of the epoch, data loading included.</param>
/// <param name="Elapsed">Wall time of the epoch, validation included.</param>
/// <param name="SkippedImages">Training images skipped as corrupt so far (with <see cref="CnnFitOptions.SkipCorruptImages"/>).</param>
public sealed record EpochMetrics(
    int Epoch,
    double TrainLoss,
    double TrainAccuracy,
    double? ValidationLoss,
    double? ValidationAccuracy,
    double LearningRate,
    double ImagesPerSecond,
    TimeSpan Elapsed,
    long SkippedImages = 0)
{
    /// <summary>One line for logs, e.g. "epoch 3: train loss 0.412 acc 85.1% | val loss 0.388 acc 86.0% | lr 0.00081 | 910 img/s".</summary>
    public override string ToString()
    {
        string validation = ValidationLoss is { } vl ? $" | val loss {vl:0.0000} acc {ValidationAccuracy:P2}" : "";
        return $"epoch {Epoch}: train loss {TrainLoss:0.0000} acc {TrainAccuracy:P2}{validation} | lr {LearningRate:G4} | {ImagesPerSecond:0} img/s | {Elapsed.TotalSeconds:0.0}s";
    }
}
