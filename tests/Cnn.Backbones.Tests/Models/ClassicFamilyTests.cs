using System.Text.RegularExpressions;
using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.Backbones.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// What only the classic families do (the shared contract is <see cref="ModelContractTests"/>): DenseNet's old checkpoint keys,
/// grey input for a SqueezeNet, LeNet-5's parameter count, 28×28 padding and ability to learn.
/// </summary>
[TestClass]
public sealed class ClassicFamilyTests
{
    [TestMethod]
    public void LeNet5HasTheParameterCountOfTheIssue()
    {
        TorchRuntime.EnsureLoaded();
        // 61,706 is the count the issue specifies for 10 classes; the plain PyTorch reference must agree with it too.
        Assert.AreEqual(61_706, ModelReference.Architecture("lenet5").Parameters);
        Assert.AreEqual(61_706, ModelRegistry.Get("lenet5").ParameterCount);
        var info = ModelRegistry.Get("lenet5");
        Assert.AreEqual(new InputSize(1, 32, 32), info.DefaultConfig.InputSize);
        Assert.AreEqual(10, info.DefaultConfig.NumClasses);
    }

    [TestMethod]
    public void DenseNetLoadsOldStyleCheckpointKeys()
    {
        TorchRuntime.EnsureLoaded();
        string path = ModelReference.Fixture("densenet121", 64).WeightsPath;
        using var file = WeightFile.Load(path);
        using var old = WeightFile.Load(path);
        // The pre-0.4 naming torchvision still accepts: denselayerN.norm.1.weight instead of denselayerN.norm1.weight.
        int renamed = 0;
        old.Rename(k =>
        {
            var m = Regex.Match(k, @"^(.*denselayer\d+\.(?:norm|relu|conv))([12])\.(weight|bias|running_mean|running_var)$");
            if (!m.Success) return k;
            renamed++;
            return $"{m.Groups[1].Value}.{m.Groups[2].Value}.{m.Groups[3].Value}";
        });
        Assert.IsTrue(renamed > 500, $"renamed {renamed} entries");
        Assert.IsTrue(old.Keys.Contains("features.denseblock1.denselayer1.norm.1.weight"));
        using var model = ModelRegistry.Create("densenet121");
        var report = model.LoadWeights(old, strict: false);
        // num_batches_tracked keeps its name in old checkpoints too (it is not matched by torchvision's pattern).
        Assert.IsEmpty(report.UnexpectedKeys.Where(k => !k.EndsWith("num_batches_tracked", StringComparison.Ordinal)).ToArray(), string.Join(", ", report.UnexpectedKeys.Take(5)));
        foreach (var (key, value) in model.state_dict().Where(e => !e.Key.EndsWith("num_batches_tracked", StringComparison.Ordinal)))
            Assert.IsTrue(TensorAssert.Identical(value, file[key]), $"{key} not loaded");
    }

    [TestMethod]
    public void GreyImagesGetTheFirstConvSummedOverRgb()
    {
        TorchRuntime.EnsureLoaded();
        string path = ModelReference.Fixture("squeezenet1_1", 64).WeightsPath;
        using var file = WeightFile.Load(path);
        using var grey = ModelRegistry.Create("squeezenet1_1", new ModelOptions { InChannels = 1 });
        Assert.IsTrue(grey.LoadWeights(path).IsComplete);
        using var scope = NewDisposeScope();
        Assert.IsTrue(grey.state_dict()["features.0.weight"].allclose(file["features.0.weight"].sum(1, keepdim: true), rtol: 1e-6, atol: 1e-7));
    }

    [TestMethod]
    public void LeNetPads28x28InputAndRejectsOtherSizes()
    {
        TorchRuntime.EnsureLoaded();
        using var model = ModelRegistry.Create("lenet5");
        Assert.AreEqual(1, model.InChannels);
        Assert.AreEqual(10, model.NumClasses);
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x28 = randn(3, 1, 28, 28);
        var padded = nn.functional.pad(x28, [2, 2, 2, 2]);
        Assert.IsTrue(TensorAssert.Identical(model.forward(padded), model.forward(x28)), "28×28 is zero-padded to 32×32");
        var stages = model.ForwardStages(x28);
        CollectionAssert.AreEqual(new long[] { 3, 6, 14, 14 }, stages[0].shape);
        CollectionAssert.AreEqual(new long[] { 3, 16, 5, 5 }, stages[1].shape);
        var error = Assert.ThrowsExactly<ArgumentException>(() => model.forward(randn(1, 1, 30, 30)));
        StringAssert.Contains(error.Message, "32×32");
        StringAssert.Contains(error.Message, "28×28");
    }

    [TestMethod]
    public void LeNetLearnsFashionMnist()
    {
        TorchRuntime.EnsureLoaded();
        manual_seed(0);
        using var model = ModelRegistry.Create("lenet5");
        double accuracy = FashionMnistSample.TrainAndTest(model, trainCount: 4000, testCount: 1000, steps: 300, batch: 64, learningRate: 2e-3);
        Assert.IsTrue(accuracy > 0.6, $"test accuracy after 300 steps {accuracy:P1}; chance is 10%");
    }
}
