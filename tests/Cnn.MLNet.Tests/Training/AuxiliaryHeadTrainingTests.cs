using Cnn.MLNet.Persistence;
using Cnn.Tests.Shared;
using Microsoft.ML;

namespace Cnn.MLNet.Tests.Training;

[TestClass]
public sealed class AuxiliaryHeadTrainingTests
{
    [TestMethod]
    public void GoogLeNetTrainsWithAuxiliaryHeadsAndReloadsIdentically()
    {
        var ml = new MLContext(seed: 5);
        var raw = FashionMnistFixture.View(ml, train: true, perClass: 8, classes: 2);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(raw).Transform(raw);
        var losses = new List<double>();
        var options = new CnnTrainerOptions
        {
            ImageColumnName = "Image", ImageSize = 64, CropPct = 1.0, Epochs = 1, BatchSize = 8, Augment = false, Seed = 5,
            AuxLogits = true, AuxLossWeight = 0.3, EpochCompleted = m => losses.Add(m.TrainLoss),
        };
        using var model = CnnTrainer.Create("googlenet", options).Fit(data);
        Assert.AreEqual(1, losses.Count);
        Assert.IsTrue(double.IsFinite(losses[0]));
        Assert.IsTrue(model.Network.Model.state_dict().Keys.Any(k => k.StartsWith("aux1.", StringComparison.Ordinal)), "aux heads were built");

        using var folder = new TempDirectory();
        CnnPipelineFile.Save(ml, model, data.Schema, folder.File("googlenet.zip"));
        var loaded = CnnPipelineFile.Load(new MLContext(), folder.File("googlenet.zip"), out _);
        var before = CnnTrainerTests.ScoresOf(ml, model.Transform(data));
        var after = CnnTrainerTests.ScoresOf(ml, loaded.Transform(data));
        for (int i = 0; i < before.Count; i++)
            CollectionAssert.AreEqual(before[i], after[i], $"row {i}");
    }
}
