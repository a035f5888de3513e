using Cnn.MLNet.Data;
using Cnn.MLNet.Distillation;
using Cnn.MLNet.Tests.Training;
using Microsoft.ML;
using static TorchSharp.torch;

namespace Cnn.MLNet.Tests.Distillation;

/// <summary>Distillation validates like fine-tuning does: a validation set or split, early stopping, the best epoch restored.</summary>
public sealed partial class DistillationTests
{
    /// <summary>Labelled Fashion-MNIST test images (never seen by the teacher) as distillation rows, with the samples they came from.</summary>
    private static (IDataView View, ImageDataset Images) ValidationRows(MLContext ml, DistillationTeacher teacher, int perClass)
    {
        var images = FashionMnistFixture.Slice(train: false, perClass: perClass);
        var rows = images.Samples.Select(s => new EncodedImageRow { Image = ImageDataViews.Encode(s), Label = images.ClassNames[s.Label] });
        var raw = ml.Data.LoadFromEnumerable(rows);
        return (teacher.MapLabelsToKeys(ml, "Label").Fit(raw).Transform(raw), images);
    }

    /// <summary>
    /// With a validation set, every epoch reports the distillation loss, accuracy and agreement on it; early stopping ends the run
    /// after the patience; and the student that comes out is the best epoch's: its distillation loss on the validation images,
    /// recomputed here from its and the teacher's logits, is the smallest one reported.
    /// </summary>
    [TestMethod]
    public void ValidationSetEarlyStoppingAndTheBestEpochsStudent()
    {
        var ml = new MLContext(seed: 2);
        using var teacher = DistillationTeacher.FromTransformer(Teacher);
        var train = ml.Data.LoadFromEnumerable(LabelledAndUnlabelledRows());
        var (validation, validationImages) = ValidationRows(ml, teacher, perClass: 3);
        var metrics = new List<DistillationEpochMetrics>();
        var options = StudentOptions(epochs: 24);
        // Fast enough to overfit 100 images, and not decaying (a cosine's last epochs at a tiny rate keep improving the validation
        // loss slightly, so the last epoch could be the best), so the validation loss turns and early stopping shows.
        options.LearningRate = 3e-2;
        options.Schedule = Cnn.MLNet.Training.LearningRateScheduleKind.Constant;
        options.Alpha = 0.9;
        options.ValidationSet = validation;
        options.EarlyStoppingPatience = 2;
        options.EpochCompleted = metrics.Add;
        using var student = CnnTrainer.Distill(teacher, "lenet5", options, ml).Fit(teacher.MapLabelsToKeys(ml, "Label").Fit(train).Transform(train));

        Assert.IsTrue(metrics.All(m => m.ValidationLoss is not null && m.ValidationAccuracy is not null && m.ValidationAgreement is not null),
            string.Join("\n", metrics));
        Assert.IsTrue(metrics.All(m => m.ToString().Contains("val loss", StringComparison.Ordinal)));
        Console.WriteLine(string.Join("\n", metrics));
        int best = metrics.Select((m, i) => (m.ValidationLoss!.Value, i)).OrderBy(t => t.Value).ThenBy(t => t.i).First().i;
        Assert.IsTrue(metrics.Count == 24 || metrics.Count - 1 - best >= 2, $"stopped after {metrics.Count} epochs, best was {best + 1}");
        Assert.IsTrue(best < metrics.Count - 1, "this recipe's last epoch is not its best, so restoring the best epoch is visible");

        // The kept student is the best epoch's. The validation images are all labelled, so per-batch means add up to the whole set's.
        using var scope = NewDisposeScope();
        var samples = validationImages.Samples;
        var studentLogits = student.Network.Forward(samples);
        var teacherLogits = teacher.Network.Forward(samples);
        var order = teacher.ClassNames.ToList();
        var labels = tensor(samples.Select(s => (long)order.IndexOf(validationImages.ClassNames[s.Label])).ToArray(), ScalarType.Int64);
        var terms = DistillationLoss.Compute(studentLogits, teacherLogits, labels, options.Temperature, options.Alpha);
        Assert.AreEqual(metrics[best].ValidationLoss!.Value, terms.Total.item<float>(), 1e-4, "the best epoch's student must be the one returned");
        double agreement = studentLogits.argmax(1).eq(teacherLogits.argmax(1)).to_type(ScalarType.Float64).mean().item<double>();
        Assert.AreEqual(metrics[best].ValidationAgreement!.Value, agreement, 1e-9);
    }

    /// <summary>
    /// <c>ValidationFraction</c> holds out a stratified share of the labelled rows of each class and of the unlabelled rows alike;
    /// accuracy needs labelled validation rows, so a validation set without any is refused for accuracy-based early stopping.
    /// </summary>
    [TestMethod]
    public void ValidationFractionSplitsLabelledAndUnlabelledRowsAlike()
    {
        var ml = new MLContext(seed: 2);
        using var teacher = DistillationTeacher.FromTransformer(Teacher);
        var data = ml.Data.LoadFromEnumerable(LabelledAndUnlabelledRows()); // 5 labelled per class + 50 unlabelled
        var keyed = teacher.MapLabelsToKeys(ml, "Label").Fit(data).Transform(data);
        var metrics = new List<DistillationEpochMetrics>();
        var options = StudentOptions(epochs: 1);
        options.ValidationFraction = 0.2;
        options.EpochCompleted = metrics.Add;
        using (CnnTrainer.Distill(teacher, "lenet5", options, ml).Fit(keyed)) { }
        Assert.AreEqual(40L, metrics[0].LabelledImages, "4 of each class's 5 labelled rows train");
        Assert.AreEqual(40L, metrics[0].UnlabelledImages, "40 of the 50 unlabelled rows train");
        Assert.IsNotNull(metrics[0].ValidationAccuracy, "10 labelled rows validate");
        Assert.IsNotNull(metrics[0].ValidationAgreement);

        var unlabelledOnly = ml.Data.LoadFromEnumerable(LabelledAndUnlabelledRows().Where(r => r.Label == ""));
        var accuracy = StudentOptions(epochs: 1);
        accuracy.ValidationSet = teacher.MapLabelsToKeys(ml, "Label").Fit(unlabelledOnly).Transform(unlabelledOnly);
        accuracy.EarlyStoppingMetric = EarlyStoppingMetric.ValidationAccuracy;
        accuracy.EarlyStoppingPatience = 1;
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => CnnTrainer.Distill(teacher, "lenet5", accuracy, ml).Fit(keyed));
        StringAssert.Contains(error.Message, "no validation image has a label");
    }
}
