namespace Cnn.Cli.Plots;

/// <summary>
/// One epoch of a training or distillation run, as <see cref="TrainingCurvesPlot"/> draws it (map <c>EpochMetrics</c> or
/// <c>DistillationEpochMetrics</c> onto it: for distillation the loss is the total loss and the accuracy the student's).
/// </summary>
/// <param name="Epoch">1-based epoch number.</param>
/// <param name="TrainLoss">Mean training loss.</param>
/// <param name="TrainAccuracy">Training accuracy in [0, 1], or null when unknown.</param>
/// <param name="ValidationLoss">Mean validation loss, or null without validation.</param>
/// <param name="ValidationAccuracy">Validation accuracy in [0, 1], or null without validation.</param>
/// <param name="LearningRate">Learning rate at the epoch's last step.</param>
internal sealed record TrainingCurvePoint(
    int Epoch, double TrainLoss, double? TrainAccuracy, double? ValidationLoss, double? ValidationAccuracy, double LearningRate);
