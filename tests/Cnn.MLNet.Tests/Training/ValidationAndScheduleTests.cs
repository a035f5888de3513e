using Cnn.MLNet.Training;
using Microsoft.ML;

namespace Cnn.MLNet.Tests.Training;

[TestClass]
public sealed class ValidationAndScheduleTests
{
    [TestMethod]
    public void BestValidationEpochIsRestoredAndEarlyStoppingEnds()
    {
        var ml = new MLContext(seed: 2);
        var raw = FashionMnistFixture.View(ml, train: true, perClass: 12, classes: 3);
        var mapper = ml.Transforms.Conversion.MapValueToKey("Label").Fit(raw);
        var train = mapper.Transform(raw);
        var validation = mapper.Transform(FashionMnistFixture.View(ml, train: false, perClass: 10, classes: 3));
        var epochs = new List<EpochMetrics>();
        var options = new CnnTrainerOptions
        {
            ImageColumnName = "Image", InputChannels = 1, ImageSize = 32, CropPct = 1.0, Epochs = 6, BatchSize = 12,
            LearningRate = 3e-3, Augment = false, Seed = 4, ValidationSet = validation,
            EarlyStoppingMetric = EarlyStoppingMetric.ValidationAccuracy, EarlyStoppingPatience = 2,
            EpochCompleted = epochs.Add,
        };
        using var model = CnnTrainer.ResNet18(options).Fit(train);

        Assert.IsTrue(epochs.All(e => e.ValidationAccuracy is not null && e.ValidationLoss is not null));
        int best = epochs.Select((e, i) => (e.ValidationAccuracy!.Value, i)).OrderByDescending(t => t.Value).ThenBy(t => t.i).First().i;
        // Training continues until 'patience' epochs without improvement, or the last epoch.
        Assert.IsTrue(epochs.Count == 6 || epochs.Count - 1 - best >= 2, $"stopped after {epochs.Count} epochs, best was {best + 1}");
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(validation));
        Assert.AreEqual(epochs[best].ValidationAccuracy!.Value, metrics.MicroAccuracy, 1e-9, "the best epoch's weights must be the ones kept");
    }

    [TestMethod]
    public void ValidationFractionNeedsValidationForEarlyStopping()
    {
        var options = new CnnTrainerOptions { EarlyStoppingPatience = 2 };
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => CnnTrainer.ResNet18(options));
        StringAssert.Contains(error.Message, "ValidationFraction");
    }

    [TestMethod]
    public void WarmupRisesLinearlyAndCosineEndsAtTheMinimum()
    {
        var schedule = new LearningRateSchedule(0.1, totalSteps: 110, warmupSteps: 10, LearningRateScheduleKind.Cosine, minRate: 0.001);
        var rates = Enumerable.Range(0, 110).Select(s => schedule.RateAt(s)).ToArray();
        for (int s = 0; s < 10; s++)
            Assert.AreEqual(0.1 * (s + 1) / 10, rates[s], 1e-12, $"warm-up step {s}");
        Assert.AreEqual(0.1, rates[10], 1e-12, "decay starts from the peak");
        Assert.AreEqual(0.001, rates[^1], 1e-12, "ends at the minimum");
        for (int s = 11; s < 110; s++)
            Assert.IsTrue(rates[s] < rates[s - 1], $"cosine decays monotonically (step {s})");
        // Cosine symmetry: rate(start + k) + rate(end - k) = peak + minimum.
        for (int k = 0; k < 50; k++)
            Assert.AreEqual(0.1 + 0.001, rates[10 + k] + rates[109 - k], 1e-12);
        var constant = new LearningRateSchedule(0.01, 20, 0, LearningRateScheduleKind.Constant);
        Assert.IsTrue(Enumerable.Range(0, 20).All(s => constant.RateAt(s) == 0.01));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new LearningRateSchedule(double.NaN, 10, 0, LearningRateScheduleKind.Cosine));
    }
}
