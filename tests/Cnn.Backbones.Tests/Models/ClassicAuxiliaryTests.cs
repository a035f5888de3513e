using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.Backbones.Weights;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// GoogLeNet's and Inception v3's auxiliary classifiers: torchvision's training-mode outputs through
/// <see cref="Backbone.ForwardTrain"/>, none in eval mode, loss weights, head reset and class-count handling when loading.
/// </summary>
[TestClass]
public sealed class ClassicAuxiliaryTests
{
    /// <summary>Training mode (batch statistics) with every dropout module off, as the reference script does.</summary>
    private static void TrainWithoutDropout(Backbone model)
    {
        model.train();
        foreach (var dropout in model.modules().OfType<Dropout>()) dropout.eval();
    }

    [TestMethod]
    public void GoogLeNetAuxOutputsMatchTorchvisionInTrainingAndAreIgnoredInEval()
    {
        TorchRuntime.EnsureLoaded();
        var fixture = ModelReference.Fixture("googlenet+aux", 64, "train");
        using var model = ModelRegistry.Create("googlenet", new ModelOptions { AuxLogits = true });
        Assert.IsTrue(model.LoadWeights(fixture.WeightsPath).IsComplete);
        using var outputs = fixture.LoadOutputs();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = outputs["input"];

        TrainWithoutDropout(model);
        var train = model.ForwardTrain(x);
        Assert.HasCount(2, train.Auxiliary);
        Assert.IsTrue(train.Auxiliary.All(a => a.Weight == GoogLeNet.DefaultAuxLossWeight), "torchvision's recipe weighs each aux loss 0.3");
        TensorAssert.AssertClose(outputs["aux1"], train.Auxiliary[0].Logits, "aux1 (after inception4a)");
        TensorAssert.AssertClose(outputs["aux2"], train.Auxiliary[1].Logits, "aux2 (after inception4d)");
        CollectionAssert.AreEqual(new long[] { 2, 1000 }, train.Logits.shape);

        model.eval();
        var eval = model.ForwardTrain(x);
        Assert.IsEmpty(eval.Auxiliary);
        Assert.IsTrue(TensorAssert.Identical(model.forward(x), eval.Logits));
        CollectionAssert.AreEqual(new long[] { 2, 1000 }, model.forward(x).shape, "forward returns only the main logits");

        // Without aux heads (the default) training mode has no auxiliary outputs either.
        using var plain = ModelRegistry.Create("googlenet", new ModelOptions { NumClasses = 5 });
        plain.train();
        Assert.IsEmpty(plain.ForwardTrain(x).Auxiliary);
    }

    [TestMethod]
    public void InceptionAuxOutputMatchesTorchvisionInTrainingAndNeedsItsMinimumInput()
    {
        TorchRuntime.EnsureLoaded();
        int size = InceptionV3.MinAuxInputSize;
        var fixture = ModelReference.Fixture("inception_v3", size, "train");
        Assert.IsTrue(fixture.Meta.GetProperty("aux_fails_one_pixel_smaller").GetBoolean(),
            $"torchvision's aux head must fail at {size - 1}×{size - 1}, so {size} is the minimum");
        using var model = ModelRegistry.Create("inception_v3");
        Assert.IsTrue(model.LoadWeights(fixture.WeightsPath).IsComplete);
        using var outputs = fixture.LoadOutputs();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = outputs["input"];

        TrainWithoutDropout(model);
        var train = model.ForwardTrain(x);
        Assert.HasCount(1, train.Auxiliary);
        Assert.AreEqual(InceptionV3.DefaultAuxLossWeight, train.Auxiliary[0].Weight);
        // Training-mode BatchNorm (batch statistics of 2 samples) through 90+ layers amplifies float32 rounding: torchvision's own
        // float32 aux output differs from its float64 one by about 2e-4 · max|ref| here, so 1e-4 would test rounding, not the model.
        using (var diffScope = NewDisposeScope())
        {
            var expected = outputs["aux"];
            var actual = train.Auxiliary[0].Logits;
            CollectionAssert.AreEqual(expected.shape, actual.shape);
            double scale = expected.abs().max().item<float>(), diff = (actual - expected).abs().max().item<float>();
            Assert.IsTrue(scale > 0 && diff <= 1e-3 * scale, $"AuxLogits: max|diff| = {diff:G4} exceeds 1e-3 · max|ref| = {1e-3 * scale:G4}");
        }

        var small = randn(2, 3, size - 1, size - 1);
        var error = Assert.ThrowsExactly<ArgumentException>(() => model.ForwardTrain(small));
        StringAssert.Contains(error.Message, $"at least {size}×{size}");
        StringAssert.Contains(error.Message, "AuxLogits = false");
        model.eval();
        Assert.IsEmpty(model.ForwardTrain(small).Auxiliary, "eval mode ignores the aux head, so smaller inputs work");
        var tooSmall = Assert.ThrowsExactly<ArgumentException>(() => model.forward(randn(1, 3, 74, 74)));
        StringAssert.Contains(tooSmall.Message, "at least 75×75");
    }

    [TestMethod]
    public void AuxLossWeightIsAnOption()
    {
        TorchRuntime.EnsureLoaded();
        using var googlenet = ModelRegistry.Create("googlenet", new ModelOptions { NumClasses = 3, AuxLogits = true, AuxLossWeight = 0.5 });
        googlenet.train();
        using var scope = NewDisposeScope();
        var output = googlenet.ForwardTrain(randn(2, 3, 64, 64));
        CollectionAssert.AreEqual(new[] { 0.5, 0.5 }, output.Auxiliary.Select(a => a.Weight).ToArray());
        Assert.IsTrue(output.Auxiliary.All(a => a.Logits.shape.SequenceEqual(new long[] { 2, 3 })));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ModelRegistry.Create("googlenet", new ModelOptions { AuxLossWeight = -1 }));
        Assert.ThrowsExactly<ArgumentException>(() => ModelRegistry.Create("googlenet", new ModelOptions { InChannels = 1, TransformInput = true }));
    }

    [TestMethod]
    [DataRow("googlenet", "fc.,aux1.fc2.,aux2.fc2.")]
    [DataRow("inception_v3", "fc.,AuxLogits.fc.")]
    public void ResetClassifierResetsTheAuxiliaryHeadsToo(string name, string headPrefixes)
    {
        TorchRuntime.EnsureLoaded();
        var heads = headPrefixes.Split(',');
        using var model = ModelRegistry.Create(name, new ModelOptions { AuxLogits = true });
        var before = model.state_dict().ToDictionary(e => e.Key, e => e.Value.clone());
        model.ResetClassifier(10);
        var after = model.state_dict();
        CollectionAssert.AreEqual(before.Keys.ToArray(), after.Keys.ToArray(), "keys and their order are kept");
        foreach (var (key, value) in after)
        {
            if (heads.Any(key.StartsWith))
            {
                Assert.AreEqual(10, value.shape[0], key);
                Assert.AreNotEqual(before[key].shape[0], value.shape[0], key);
            }
            else
            {
                Assert.IsTrue(TensorAssert.Identical(value, before[key]), $"{key} changed");
            }
        }
        Assert.AreEqual(10, model.NumClasses);
        model.train();
        using (var scope = NewDisposeScope())
        {
            int size = name == "inception_v3" ? InceptionV3.MinAuxInputSize : 64;
            var output = model.ForwardTrain(randn(2, 3, size, size));
            Assert.IsTrue(output.Auxiliary.Append(new AuxiliaryOutput(output.Logits, 1)).All(a => a.Logits.shape.SequenceEqual(new long[] { 2, 10 })));

            model.ResetClassifier(0);
            Assert.IsFalse(model.state_dict().Keys.Any(k => heads.Any(k.StartsWith)), "no classification layers left");
            int small = name == "inception_v3" ? 75 : 64;
            var pooled = model.ForwardTrain(randn(2, 3, small, small));
            Assert.IsEmpty(pooled.Auxiliary, "no auxiliary outputs without classes");
            CollectionAssert.AreEqual(new long[] { 2, model.NumFeatures }, pooled.Logits.shape);
        }
        foreach (var t in before.Values) t.Dispose();
    }

    [TestMethod]
    public void ImageNetWeightsIntoTenClassGoogLeNetTreatAuxHeadsLikeTheClassifier()
    {
        TorchRuntime.EnsureLoaded();
        string path = ModelReference.Fixture("googlenet+aux", 64).WeightsPath;
        using var file = WeightFile.Load(path);

        using var withAux = ModelRegistry.Create("googlenet", new ModelOptions { NumClasses = 10, AuxLogits = true, WeightsPath = path });
        var state = withAux.state_dict();
        foreach (var key in new[] { "aux1.conv.conv.weight", "aux1.fc1.weight", "aux2.conv.bn.running_var", "inception5b.branch4.1.conv.weight" })
            Assert.IsTrue(TensorAssert.Identical(state[key], file[key]), $"{key} loaded");
        foreach (var key in new[] { "fc.weight", "aux1.fc2.weight", "aux2.fc2.weight" })
            Assert.AreEqual(10, state[key].shape[0], $"{key} is a fresh 10-class layer");

        var strict = Assert.ThrowsExactly<ClassifierMismatchException>(() => withAux.LoadWeights(path, strict: true));
        StringAssert.Contains(strict.Message, "'fc' has 1000 classes");
        var report = withAux.LoadWeights(path, strict: false);
        CollectionAssert.AreEquivalent(
            new[] { "fc.weight", "fc.bias", "aux1.fc2.weight", "aux1.fc2.bias", "aux2.fc2.weight", "aux2.fc2.bias" },
            report.ShapeMismatches.Select(m => m.Name).ToArray());

        // Built without aux heads (torchvision's pretrained default): the file's aux entries are dropped, as torchvision does.
        using var noAux = ModelRegistry.Create("googlenet", new ModelOptions { NumClasses = 10, WeightsPath = path });
        Assert.IsFalse(noAux.state_dict().Keys.Any(k => k.StartsWith("aux", StringComparison.Ordinal)));
        using var same = ModelRegistry.Create("googlenet");
        Assert.IsTrue(same.LoadWeights(path, strict: true).IsComplete);
        Assert.IsTrue(TensorAssert.Identical(same.state_dict()["fc.weight"], file["fc.weight"]));
    }

    [TestMethod]
    public void ImageNetWeightsIntoTenClassInceptionTreatAuxHeadLikeTheClassifier()
    {
        TorchRuntime.EnsureLoaded();
        string path = ModelReference.Fixture("inception_v3", 75).WeightsPath;
        using var file = WeightFile.Load(path);
        using var model = ModelRegistry.Create("inception_v3", new ModelOptions { NumClasses = 10, WeightsPath = path });
        var state = model.state_dict();
        Assert.IsTrue(TensorAssert.Identical(state["AuxLogits.conv1.conv.weight"], file["AuxLogits.conv1.conv.weight"]));
        CollectionAssert.AreEqual(new long[] { 10, 768 }, state["AuxLogits.fc.weight"].shape);
        CollectionAssert.AreEqual(new long[] { 10, 2048 }, state["fc.weight"].shape);

        using var noAux = ModelRegistry.Create("inception_v3", new ModelOptions { AuxLogits = false });
        var report = noAux.LoadWeights(path, strict: true);
        Assert.IsTrue(report.IsComplete, report.ToString());
        Assert.IsFalse(noAux.state_dict().Keys.Any(k => k.StartsWith("AuxLogits", StringComparison.Ordinal)));
    }
}
