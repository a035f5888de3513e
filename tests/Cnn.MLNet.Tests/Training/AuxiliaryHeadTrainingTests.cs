using Cnn.MLNet.Persistence;
using Cnn.MLNet.Training;
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
            ImageColumnName = "Image", Model = new() { ImageSize = 64, AuxLogits = true, AuxLossWeight = 0.3 }, CropPct = 1.0, Epochs = 1, BatchSize = 8,
            Precision = CnnPrecision.Float32, MemoryFormat = CnnMemoryFormat.Contiguous, InferenceEngine = CnnInferenceEngine.TorchSharp,
            Augment = false, Seed = 5, EpochCompleted = m => losses.Add(m.TrainLoss),
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

    /// <summary>
    /// The trainer's loss with auxiliary heads, against PyTorch on torchvision's GoogLeNet and Inception v3 in training mode
    /// (dropout off): CE(main) + 0.3·(CE(aux1) + CE(aux2)) and CE(main) + 0.4·CE(aux), the weights of the papers that
    /// torchvision's heads come from; in eval mode the heads are silent and the loss is CE(main).
    /// </summary>
    [TestMethod]
    [DataRow("googlenet", 64)]
    [DataRow("inception_v3", Cnn.Backbones.Models.InceptionV3.MinAuxInputSize)] // the smallest input its aux head accepts
    public void AuxiliaryLossesAreAddedWithTheirWeightsInTrainingOnly(string name, int size)
    {
        using var folder = new TempDirectory();
        string output = ReferencePython.Run("""
            import json, sys, torch, torchvision
            import torch.nn.functional as F
            name, size, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
            torch.manual_seed(0)
            m = getattr(torchvision.models, name)(aux_logits=True, init_weights=True, transform_input=False, num_classes=5)
            torch.save(m.state_dict(), folder + "/w.pth")
            g = torch.Generator().manual_seed(3)
            x = torch.randn(4, 3, size, size, generator=g)
            y = torch.tensor([0, 1, 2, 4])
            torch.save({"x": x}, folder + "/x.pth")
            with torch.no_grad():
                m.eval()
                evaluation = F.cross_entropy(m(x), y)
                m.train()
                for mod in m.modules():
                    if isinstance(mod, torch.nn.Dropout):
                        mod.eval()
                o = m(x)
                if name == "googlenet":
                    train = F.cross_entropy(o.logits, y) + 0.3 * (F.cross_entropy(o.aux_logits1, y) + F.cross_entropy(o.aux_logits2, y))
                else:
                    train = F.cross_entropy(o.logits, y) + 0.4 * F.cross_entropy(o.aux_logits, y)
            print(json.dumps({"train": float(train), "eval": float(evaluation)}))
            """, name, size.ToString(System.Globalization.CultureInfo.InvariantCulture), folder.Path);
        using var reference = System.Text.Json.JsonDocument.Parse(output);
        using var model = Cnn.Backbones.Models.ModelRegistry.Create(name, new Cnn.Backbones.Models.ModelOptions
        {
            NumClasses = 5, AuxLogits = true, TransformInput = false, DropRate = 0,
        });
        model.LoadWeights(folder.File("w.pth"), strict: true);
        using var inputs = Cnn.Backbones.Weights.WeightFile.Load(folder.File("x.pth"));
        using var scope = TorchSharp.torch.NewDisposeScope();
        using var noGrad = TorchSharp.torch.no_grad();
        var x = inputs["x"];
        var y = TorchSharp.torch.tensor(new long[] { 0, 1, 2, 4 });
        // Eval first (fresh running statistics), as the reference does; the training-mode pass then updates them.
        model.eval();
        double evaluation = ClassificationObjective.Loss(model.ForwardTrain(x), y).item<float>();
        model.train();
        foreach (var dropout in model.modules().OfType<TorchSharp.Modules.Dropout>()) dropout.eval();
        double train = ClassificationObjective.Loss(model.ForwardTrain(x), y).item<float>();
        // Relative tolerance: torchvision's Inception v3 initialisation (truncated normal, std 0.1) gives huge random logits.
        double expectedTrain = reference.RootElement.GetProperty("train").GetDouble(), expectedEval = reference.RootElement.GetProperty("eval").GetDouble();
        Assert.AreEqual(expectedTrain, train, 1e-4 * Math.Max(1, Math.Abs(expectedTrain)), $"{name}: training loss with auxiliary heads");
        Assert.AreEqual(expectedEval, evaluation, 1e-4 * Math.Max(1, Math.Abs(expectedEval)), $"{name}: eval loss is the main head's alone");
    }
}
