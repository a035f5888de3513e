using Cnn.MLNet.Distillation;
using Cnn.MLNet.Training;

namespace Cnn.Cli.Plots;

/// <summary>One epoch of a training or distillation run, as <see cref="TrainingCurvesPlot"/> draws it.</summary>
/// <param name="Epoch">1-based epoch number.</param>
/// <param name="TrainLoss">Mean training loss.</param>
/// <param name="TrainAccuracy">Training accuracy in [0, 1], or null when unknown.</param>
/// <param name="ValidationLoss">Mean validation loss, or null without validation.</param>
/// <param name="ValidationAccuracy">Validation accuracy in [0, 1], or null without validation.</param>
/// <param name="LearningRate">Learning rate at the epoch's last step.</param>
internal sealed record TrainingCurvePoint(
    int Epoch, double TrainLoss, double? TrainAccuracy, double? ValidationLoss, double? ValidationAccuracy, double LearningRate)
{
    /// <summary>A training epoch.</summary>
    public static TrainingCurvePoint From(EpochMetrics m) =>
        new(m.Epoch, m.TrainLoss, m.TrainAccuracy, m.ValidationLoss, m.ValidationAccuracy, m.LearningRate);

    /// <summary>A distillation epoch: the total loss, and the student's accuracy on the labelled rows.</summary>
    public static TrainingCurvePoint From(DistillationEpochMetrics m) =>
        new(m.Epoch, m.Loss, m.StudentAccuracy, m.ValidationLoss, m.ValidationAccuracy, m.LearningRate);
}
