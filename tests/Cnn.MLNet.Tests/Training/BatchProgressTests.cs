using Cnn.MLNet.Training;
using Microsoft.ML;

namespace Cnn.MLNet.Tests.Training;

[TestClass]
public sealed class BatchProgressTests
{
    /// <summary>Every optimizer step reports its place in the epoch: the bar of 'cnn train' is drawn from these.</summary>
    [TestMethod]
    public void EveryStepReportsItsProgress()
    {
        var ml = new MLContext(seed: 1);
        var raw = FashionMnistFixture.View(ml, train: true, perClass: 2, classes: 5); // 10 images
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(raw).Transform(raw);
        var steps = new List<BatchProgress>();
        var epochs = new List<EpochMetrics>();
        var options = new CnnTrainerOptions
        {
            Model = new() { InChannels = 1, ImageSize = 32 }, CropPct = 1.0, Epochs = 2, BatchSize = 4, Augment = false,
            Precision = CnnPrecision.Float32, MemoryFormat = CnnMemoryFormat.Contiguous, InferenceEngine = CnnInferenceEngine.TorchSharp,
            BatchCompleted = steps.Add, EpochCompleted = epochs.Add,
        };
        using var model = CnnTrainer.LeNet5(options).Fit(data);
        Assert.HasCount(6, steps, "3 batches (4 + 4 + 2) in each of 2 epochs");
        CollectionAssert.AreEqual(new[] { 1, 2, 3, 1, 2, 3 }, steps.Select(s => s.Batch).ToArray());
        Assert.IsTrue(steps.All(s => s.Batches == 3 && s.Epochs == 2));
        CollectionAssert.AreEqual(new long[] { 4, 8, 10, 4, 8, 10 }, steps.Select(s => s.Images).ToArray());
        Assert.AreEqual(epochs[0].TrainLoss, steps[2].RunningLoss, 1e-9, "the epoch's last running loss is its training loss");
        Assert.AreEqual(TimeSpan.Zero, steps[2].Remaining);
        Assert.IsTrue(steps[0].Remaining > TimeSpan.Zero);
    }
}
