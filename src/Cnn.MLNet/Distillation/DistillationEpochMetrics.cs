namespace Cnn.MLNet.Distillation;

/// <summary>What one distillation epoch achieved; passed to <see cref="CnnDistillationOptions.EpochCompleted"/> and logged through the ML.NET host.</summary>
/// <param name="Epoch">1-based epoch number.</param>
/// <param name="Loss">Mean total loss per image (see <see cref="CnnDistillationOptions"/> for the formula), weighted by batch size.</param>
/// <param name="HardLoss">Mean cross-entropy per hard-labelled image (labels, plus pseudo-labels when enabled), or null when no row had one.</param>
/// <param name="SoftLoss">Mean KL divergence KL(softmax(t/T) ‖ softmax(s/T)) per image, without the T² factor.</param>
/// <param name="StudentAccuracy">Student accuracy on the rows with a true label (training images, augmented), or null when there are none.</param>
/// <param name="TeacherAccuracy">Teacher accuracy on the same rows and views, or null when there are none.</param>
/// <param name="TeacherAgreement">Fraction of all rows where the student's argmax equals the teacher's.</param>
/// <param name="LabelledImages">Images of the epoch with a true label.</param>
/// <param name="UnlabelledImages">Images of the epoch without a label.</param>
/// <param name="LearningRate">Learning rate at the epoch's last step.</param>
/// <param name="ImagesPerSecond">Throughput of the epoch, data loading and teacher passes included.</param>
/// <param name="Elapsed">Wall time of the epoch, validation included.</param>
/// <param name="ValidationLoss">Mean distillation loss per validation image (eval mode), or null without validation data.</param>
/// <param name="ValidationAccuracy">Student accuracy on the labelled validation images, or null when there are none.</param>
/// <param name="ValidationAgreement">Fraction of validation images where the student's argmax equals the teacher's, or null without validation data.</param>
/// <param name="SkippedImages">Training images skipped as corrupt so far (with <see cref="CnnFitOptions.SkipCorruptImages"/>).</param>
public sealed record DistillationEpochMetrics(
    int Epoch,
    double Loss,
    double? HardLoss,
    double SoftLoss,
    double? StudentAccuracy,
    double? TeacherAccuracy,
    double TeacherAgreement,
    long LabelledImages,
    long UnlabelledImages,
    double LearningRate,
    double ImagesPerSecond,
    TimeSpan Elapsed,
    double? ValidationLoss = null,
    double? ValidationAccuracy = null,
    double? ValidationAgreement = null,
    long SkippedImages = 0)
{
    /// <summary>One line for logs, e.g. "distill epoch 2: loss 1.2034 (hard 0.4512, soft 0.0932) | student train acc 84.10% teacher acc 91.30% | agreement 88.20% | val loss 1.3011 acc 83.90% agreement 87.50% | …".</summary>
    public override string ToString()
    {
        string hard = HardLoss is { } h ? $"hard {h:0.0000}, " : "";
        string accuracy = StudentAccuracy is { } s ? $" | student train acc {s:P2} teacher acc {TeacherAccuracy:P2}" : "";
        string validation = ValidationLoss is { } vl
            ? $" | val loss {vl:0.0000}{(ValidationAccuracy is { } va ? $" acc {va:P2}" : "")} agreement {ValidationAgreement:P2}"
            : "";
        return $"distill epoch {Epoch}: loss {Loss:0.0000} ({hard}soft {SoftLoss:0.0000}){accuracy} | agreement {TeacherAgreement:P2}{validation} | " +
               $"{LabelledImages} labelled + {UnlabelledImages} unlabelled | lr {LearningRate:G4} | {ImagesPerSecond:0} img/s | {Elapsed.TotalSeconds:0.0}s";
    }
}
