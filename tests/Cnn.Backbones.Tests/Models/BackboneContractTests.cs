using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.Backbones.Weights;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// The timm-style hooks of <see cref="Backbone"/> on ResNet: feature stages, head reset, class-count and input-channel
/// handling when loading torchvision weights, freezing, registry and input errors.
/// </summary>
[TestClass]
public sealed class BackboneContractTests
{
    /// <summary>A torchvision resnet18 (1000 classes) saved by torch.save, shared with the parity test.</summary>
    private static string Resnet18Weights => ModelReference.Fixture("resnet18", 64).WeightsPath;

    [TestMethod]
    [DataRow("resnet18")]
    [DataRow("resnet50")]
    public void FeatureInfoMatchesTimmAndTheStageOutputs(string name)
    {
        TorchRuntime.EnsureLoaded();
        using var model = ModelRegistry.Create(name, new ModelOptions { FeaturesOnly = true });
        int e = name == "resnet18" ? 1 : 4;
        var expected = new[] { new FeatureInfo(64, 2, "act1"), new(64 * e, 4, "layer1"), new(128 * e, 8, "layer2"), new(256 * e, 16, "layer3"), new(512 * e, 32, "layer4") };
        CollectionAssert.AreEqual(expected, model.FeatureInfo.ToArray());
        var moduleNames = model.named_modules().Select(m => m.name).ToHashSet();
        foreach (var info in model.FeatureInfo) Assert.Contains(info.ModuleName, moduleNames, "FeatureInfo must name a real module");

        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var stages = model.ForwardStages(randn(2, 3, 64, 64));
        Assert.HasCount(5, stages);
        for (int i = 0; i < stages.Count; i++)
        {
            var info = model.FeatureInfo[i];
            CollectionAssert.AreEqual(new long[] { 2, info.NumChannels, 64 / info.Reduction, 64 / info.Reduction }, stages[i].shape, info.ModuleName);
        }
        Assert.AreEqual(model.NumFeatures, model.FeatureInfo[^1].NumChannels);
        // Features-only: no classifier parameters, forward returns the last map, the head cannot be used.
        Assert.IsFalse(model.state_dict().Keys.Any(k => k.StartsWith("fc.", StringComparison.Ordinal)));
        Assert.AreEqual(0, model.NumClasses);
        CollectionAssert.AreEqual(stages[^1].shape, model.forward(randn(2, 3, 64, 64)).shape);
        Assert.ThrowsExactly<InvalidOperationException>(() => model.ForwardHead(stages[^1]));
        Assert.ThrowsExactly<InvalidOperationException>(() => model.ResetClassifier(10));
    }

    [TestMethod]
    public void OutIndicesSelectStagesAndAreValidated()
    {
        TorchRuntime.EnsureLoaded();
        using var model = ModelRegistry.Create("resnet18", new ModelOptions { FeaturesOnly = true, OutIndices = [1, 3, -1] });
        CollectionAssert.AreEqual(new[] { 1, 3, 4 }, model.OutIndices.ToArray());
        CollectionAssert.AreEqual(new[] { "layer1", "layer3", "layer4" }, model.OutFeatureInfo.Select(f => f.ModuleName).ToArray());
        using var scope = NewDisposeScope();
        var maps = model.ForwardStages(randn(1, 3, 64, 64));
        CollectionAssert.AreEqual(new[] { 64L, 256, 512 }, maps.Select(m => m.shape[1]).ToArray());
        CollectionAssert.AreEqual(new[] { 16L, 4, 2 }, maps.Select(m => m.shape[2]).ToArray());

        var bad = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ModelRegistry.Create("resnet18", new ModelOptions { OutIndices = [5] }));
        StringAssert.Contains(bad.Message, "0..4");
        Assert.ThrowsExactly<ArgumentException>(() => ModelRegistry.Create("resnet18", new ModelOptions { OutIndices = [2, 1] }));
    }

    [TestMethod]
    public void ResetClassifierChangesOnlyTheHead()
    {
        TorchRuntime.EnsureLoaded();
        using var model = ModelRegistry.Create("resnet18");
        var before = model.state_dict().ToDictionary(e => e.Key, e => e.Value.clone());
        var oldHead = model.GetClassifier();
        model.ResetClassifier(10);

        var after = model.state_dict();
        CollectionAssert.AreEqual(before.Keys.ToArray(), after.Keys.ToArray(), "keys and their order are kept");
        foreach (var (key, value) in after)
        {
            if (key.StartsWith("fc.", StringComparison.Ordinal)) continue;
            Assert.IsTrue(TensorAssert.Identical(value, before[key]), $"{key} changed");
        }
        CollectionAssert.AreEqual(new long[] { 10, 512 }, after["fc.weight"].shape);
        CollectionAssert.AreEqual(new long[] { 10 }, after["fc.bias"].shape);
        Assert.AreEqual(10, model.NumClasses);
        Assert.AreNotSame(oldHead, model.GetClassifier());
        Assert.IsInstanceOfType<Cnn.Backbones.Compute.PrecisionLinear>(model.GetClassifier());
        Assert.IsTrue(after["fc.weight"].abs().sum().item<float>() > 0, "new head is initialised, not zero");
        using var scope = NewDisposeScope();
        model.eval();
        CollectionAssert.AreEqual(new long[] { 2, 10 }, model.forward(randn(2, 3, 32, 32)).shape);
        foreach (var t in before.Values) t.Dispose();
    }

    [TestMethod]
    public void ResetClassifierToZeroReturnsPooledFeatures()
    {
        TorchRuntime.EnsureLoaded();
        using var model = ModelRegistry.Create("resnet18");
        model.ResetClassifier(0);
        model.eval();
        Assert.AreEqual(0, model.NumClasses);
        Assert.IsFalse(model.state_dict().Keys.Any(k => k.StartsWith("fc.", StringComparison.Ordinal)));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = randn(2, 3, 64, 64);
        var pooled = model.forward(x);
        CollectionAssert.AreEqual(new long[] { 2, 512 }, pooled.shape);
        var expected = model.ForwardFeatures(x).mean([2, 3]);
        Assert.IsTrue(pooled.allclose(expected, rtol: 1e-5, atol: 1e-6));
        Assert.IsTrue(TensorAssert.Identical(pooled, model.ForwardHead(model.ForwardFeatures(x), preLogits: true)));

        using var created = ModelRegistry.Create("resnet18", new ModelOptions { NumClasses = 0 });
        CollectionAssert.AreEqual(new long[] { 2, 512 }, created.forward(x).shape);
    }

    [TestMethod]
    public void LoadingImageNetWeightsIntoTenClassModelSkipsOrRejectsTheClassifier()
    {
        TorchRuntime.EnsureLoaded();
        using var file = WeightFile.Load(Resnet18Weights);
        using var model = ModelRegistry.Create("resnet18", new ModelOptions { NumClasses = 10 });
        var conv1Before = model.state_dict()["conv1.weight"].clone();

        var error = Assert.ThrowsExactly<ClassifierMismatchException>(() => model.LoadWeights(Resnet18Weights, strict: true));
        StringAssert.Contains(error.Message, "'fc' has 1000 classes");
        StringAssert.Contains(error.Message, "NumClasses = 10");
        StringAssert.Contains(error.Message, "strict: false");
        Assert.AreEqual(1000, error.FileClasses);
        Assert.IsTrue(TensorAssert.Identical(model.state_dict()["conv1.weight"], conv1Before), "a failed strict load changes nothing");

        var fcBefore = model.state_dict()["fc.weight"].clone();
        var report = model.LoadWeights(Resnet18Weights, strict: false);
        CollectionAssert.AreEqual(new[] { "fc.weight", "fc.bias" }, report.ShapeMismatches.Select(m => m.Name).ToArray());
        Assert.IsEmpty(report.MissingKeys);
        Assert.IsEmpty(report.UnexpectedKeys);
        var loaded = model.state_dict();
        foreach (var (key, value) in loaded.Where(e => !e.Key.StartsWith("fc.", StringComparison.Ordinal)))
            Assert.IsTrue(TensorAssert.Identical(value, file[key]), $"{key} not loaded");
        Assert.IsTrue(TensorAssert.Identical(loaded["fc.weight"], fcBefore), "skipped head keeps its initialisation");

        // Fine-tuning path: Create with WeightsPath loads the body strictly and keeps a fresh 10-class head.
        using var pretrained = ModelRegistry.Create("resnet18", new ModelOptions { NumClasses = 10, WeightsPath = Resnet18Weights });
        Assert.IsTrue(TensorAssert.Identical(pretrained.state_dict()["layer4.1.bn2.running_var"], file["layer4.1.bn2.running_var"]));
        CollectionAssert.AreEqual(new long[] { 10, 512 }, pretrained.state_dict()["fc.weight"].shape);
        using var same = ModelRegistry.Create("resnet18", new ModelOptions { WeightsPath = Resnet18Weights });
        Assert.IsTrue(TensorAssert.Identical(same.state_dict()["fc.weight"], file["fc.weight"]), "matching classifier is loaded");
        using var features = ModelRegistry.Create("resnet18", new ModelOptions { FeaturesOnly = true, WeightsPath = Resnet18Weights });
        Assert.IsTrue(TensorAssert.Identical(features.state_dict()["layer1.0.conv1.weight"], file["layer1.0.conv1.weight"]), "features-only body is loaded");
        var headless = Assert.ThrowsExactly<ClassifierMismatchException>(() => features.LoadWeights(Resnet18Weights));
        StringAssert.Contains(headless.Message, "features-only");
        conv1Before.Dispose();
        fcBefore.Dispose();
    }

    [TestMethod]
    public void SingleChannelModelGetsFirstConvSummedOverRgb()
    {
        TorchRuntime.EnsureLoaded();
        using var file = WeightFile.Load(Resnet18Weights);
        using var gray = ModelRegistry.Create("resnet18", new ModelOptions { InChannels = 1 });
        var report = gray.LoadWeights(Resnet18Weights, strict: true);
        Assert.IsTrue(report.IsComplete, report.ToString());
        using var scope = NewDisposeScope();
        var expected = file["conv1.weight"].sum(1, keepdim: true);
        var actual = gray.state_dict()["conv1.weight"];
        CollectionAssert.AreEqual(new long[] { 64, 1, 7, 7 }, actual.shape);
        Assert.IsTrue(actual.allclose(expected, rtol: 1e-6, atol: 1e-7));

        // A grey image through the 1-channel model equals the same image replicated to RGB through the 3-channel model.
        using var rgb = ModelRegistry.Create("resnet18");
        rgb.LoadWeights(Resnet18Weights);
        gray.eval();
        rgb.eval();
        using var noGrad = no_grad();
        var x = randn(2, 1, 64, 64);
        TensorAssert.AssertClose(rgb.forward(x.expand(2, 3, 64, 64)), gray.forward(x), "grey vs replicated RGB logits");

        using var five = ModelRegistry.Create("resnet18", new ModelOptions { InChannels = 5 });
        Assert.IsTrue(five.LoadWeights(Resnet18Weights).IsComplete);
        CollectionAssert.AreEqual(new long[] { 64, 5, 7, 7 }, five.state_dict()["conv1.weight"].shape);
    }

    [TestMethod]
    public void FreezeUpToStageFreezesExactlyThoseParametersAndKeepsTheirBatchNormInEval()
    {
        TorchRuntime.EnsureLoaded();
        using var model = ModelRegistry.Create("resnet18");
        CollectionAssert.AreEqual(new[] { "stem", "layer1", "layer2", "layer3", "layer4", "head" }, model.StageGroups.Select(g => g.Name).ToArray());
        model.FreezeUpTo(2);
        model.train();

        string[] frozenPrefixes = ["conv1.", "bn1.", "layer1.", "layer2."];
        foreach (var (name, parameter) in model.named_parameters())
            Assert.AreEqual(!frozenPrefixes.Any(name.StartsWith), parameter.requires_grad, name);
        int frozenNorms = 0;
        foreach (var (name, module) in model.named_modules().Where(m => m.module is BatchNorm))
        {
            bool frozen = frozenPrefixes.Any((name + ".").StartsWith);
            frozenNorms += frozen ? 1 : 0;
            Assert.AreEqual(!frozen, module.training, $"{name} training mode");
        }
        Assert.AreEqual(1 + 4 + 5, frozenNorms, "bn1, layer1 (2 blocks × 2), layer2 (2 × 2 + downsample)");
        Assert.IsTrue(model.training);

        // A training step leaves frozen running statistics alone and updates the others.
        var frozenStats = model.state_dict()["layer2.0.bn1.running_mean"].clone();
        var liveStats = model.state_dict()["layer3.0.bn1.running_mean"].clone();
        using (var scope = NewDisposeScope())
            model.forward(randn(2, 3, 64, 64)).sum().backward();
        Assert.IsTrue(TensorAssert.Identical(model.state_dict()["layer2.0.bn1.running_mean"], frozenStats));
        Assert.IsFalse(TensorAssert.Identical(model.state_dict()["layer3.0.bn1.running_mean"], liveStats));
        Assert.IsNull(model.state_dict()["layer1.0.conv1.weight"].grad);
        Assert.IsNotNull(model.state_dict()["layer3.0.conv1.weight"].grad);

        model.Unfreeze();
        Assert.IsTrue(model.parameters().All(p => p.requires_grad));
        Assert.IsTrue(model.modules().OfType<BatchNorm>().All(m => m.training));
        model.eval();
        Assert.IsTrue(model.modules().OfType<BatchNorm>().All(m => !m.training));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => model.FreezeUpTo(6));
        Assert.ThrowsExactly<ArgumentException>(() => model.Freeze("layer9"));
        frozenStats.Dispose();
        liveStats.Dispose();
    }

    [TestMethod]
    public void BlockCountsBuildAResNetWithOtherStageDepths()
    {
        TorchRuntime.EnsureLoaded();
        // Issue #11: ML.NET's ResNet-18 featurizer has three blocks in layer4 (parity with torchvision's ResNet(BasicBlock,
        // [2, 2, 2, 3]) is the resnet18+blocks-2-2-2-3 spec of the registry-driven suites).
        using var model = (ResNet)ModelRegistry.Create("resnet18", new ModelOptions { BlockCounts = [2, 2, 2, 3], NumClasses = 10 });
        CollectionAssert.AreEqual(new[] { 2, 2, 2, 3 }, model.Architecture.Layers.ToArray());
        var keys = model.state_dict().Keys.ToHashSet();
        Assert.Contains("layer4.2.conv2.weight", keys);
        Assert.DoesNotContain("layer3.2.conv1.weight", keys);
        Assert.AreEqual("resnet18", model.GetName());
        using var scope = NewDisposeScope();
        model.eval();
        CollectionAssert.AreEqual(new long[] { 2, 10 }, model.forward(randn(2, 3, 64, 64)).shape);

        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => ModelRegistry.Create("resnet18", new ModelOptions { BlockCounts = [2, 2, 2] })).Message,
            "4 stages");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => ModelRegistry.Create("resnet50", new ModelOptions { BlockCounts = [3, 0, 6, 3] })).Message,
            "BlockCounts must be null or block counts >= 1");
        Assert.ThrowsExactly<ArgumentException>(() => ModelRegistry.Create("resnet50", new ModelOptions { BlockCounts = [] }));
    }

    [TestMethod]
    public void StageParametersPartitionEveryParameter()
    {
        TorchRuntime.EnsureLoaded();
        using var model = new ResNet(ResNetFamily.Architectures.Single(a => a.Name == "resnext50_32x4d"), device: META);
        var groups = model.GetStageParameters();
        var grouped = groups.SelectMany(g => g.Parameters.Select(p => p.Name)).ToList();
        CollectionAssert.AreEqual(model.named_parameters().Select(p => p.name).OrderBy(n => n, StringComparer.Ordinal).ToArray(),
            grouped.OrderBy(n => n, StringComparer.Ordinal).ToArray(), "each parameter in exactly one stage");
        Assert.IsTrue(groups.All(g => g.Parameters.Count > 0), "no empty stage");
        CollectionAssert.AreEqual(new[] { "fc.weight", "fc.bias" }, groups[^1].Parameters.Select(p => p.Name).ToArray());
    }

    [TestMethod]
    public void GradientsFlowThroughTheWholeNetwork()
    {
        TorchRuntime.EnsureLoaded();
        using var model = ModelRegistry.Create("resnet50", new ModelOptions { NumClasses = 3, DropRate = 0.2 });
        model.train();
        using var scope = NewDisposeScope();
        var x = randn(2, 3, 32, 32, requires_grad: true);
        using (var y = model.forward(x)) (y * y).sum().backward();
        foreach (var (name, parameter) in model.named_parameters())
            Assert.IsNotNull(parameter.grad, $"{name} has no gradient");
        Assert.IsTrue(x.grad is not null && x.grad.abs().sum().item<float>() > 0);
    }

    [TestMethod]
    public void WrongInputShapeSaysWhatIsExpected()
    {
        TorchRuntime.EnsureLoaded();
        using var model = ModelRegistry.Create("resnet18", new ModelOptions { InChannels = 1, NumClasses = 2 });
        using var scope = NewDisposeScope();
        var error = Assert.ThrowsExactly<ArgumentException>(() => model.forward(randn(2, 3, 32, 32)));
        StringAssert.Contains(error.Message, "[N, C, H, W] with C = 1");
        StringAssert.Contains(error.Message, "[2, 3, 32, 32]");
        Assert.ThrowsExactly<ArgumentException>(() => model.forward(randn(1, 32, 32)));
        Assert.ThrowsExactly<ArgumentException>(() => model.ForwardStages(randn(1, 2, 32, 32)));
    }

    [TestMethod]
    public void UnknownModelAndBadOptionsGiveActionableErrors()
    {
        TorchRuntime.EnsureLoaded();
        var unknown = Assert.ThrowsExactly<ArgumentException>(() => ModelRegistry.Create("resnet5"));
        StringAssert.Contains(unknown.Message, "Unknown model 'resnet5'");
        StringAssert.Contains(unknown.Message, "Did you mean: resnet50");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => ModelRegistry.Create("wide_resnet50")).Message, "wide_resnet50_2");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => ModelRegistry.Create("resnxt50_32x4d")).Message, "resnext50_32x4d");
        Assert.IsFalse(ModelRegistry.Exists("not_a_model"));

        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ModelRegistry.Create("resnet18", new ModelOptions { NumClasses = -1 })).Message, "NumClasses must be >= 0");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ModelRegistry.Create("resnet18", new ModelOptions { InChannels = 0 })).Message, "InChannels");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ModelRegistry.Create("resnet18", new ModelOptions { DropRate = 1.0 })).Message, "DropRate");
        // A missing weights file is one FileNotFoundException wherever it is checked (the registry, the trainer, the feature extractor).
        StringAssert.Contains(Assert.ThrowsExactly<FileNotFoundException>(() => ModelRegistry.Create("resnet18", new ModelOptions { WeightsPath = "/nonexistent/w.pth" })).Message, "does not exist");
        using var model = ModelRegistry.Create("resnet18");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => model.ResetClassifier(-1));
    }
}

/// <summary>torchvision's initialisation: Kaiming-normal (fan-out, ReLU) convolutions, BatchNorm weight 1 / bias 0, zero_init_residual.</summary>
[TestClass]
public sealed class ResNetInitialisationTests
{
    [TestMethod]
    public void ConvolutionsAreKaimingNormalFanOutAndNormsStartAtIdentity()
    {
        TorchRuntime.EnsureLoaded();
        manual_seed(3);
        using var model = ModelRegistry.Create("resnet50");
        var state = model.state_dict();
        foreach (var key in new[] { "layer4.0.conv2.weight", "layer3.0.conv3.weight", "layer2.0.downsample.0.weight" })
        {
            var w = state[key];
            double fanOut = w.shape[0] * w.shape[2] * w.shape[3];
            double expected = Math.Sqrt(2.0 / fanOut);
            double std = w.std().item<float>();
            Assert.AreEqual(expected, std, 0.03 * expected, $"{key}: std {std:G4} vs sqrt(2 / fan_out) = {expected:G4}");
            Assert.AreEqual(0.0, w.mean().item<float>(), 0.05 * expected, $"{key} mean");
        }
        foreach (var (key, value) in state.Where(e => e.Key.Contains("bn", StringComparison.Ordinal) || e.Key.Contains("downsample.1", StringComparison.Ordinal)))
        {
            if (key.EndsWith(".weight", StringComparison.Ordinal)) Assert.IsTrue(value.eq(Scalars.One).all().item<bool>(), key);
            if (key.EndsWith(".bias", StringComparison.Ordinal)) Assert.IsTrue(value.eq(Scalars.Zero).all().item<bool>(), key);
        }
    }

    [TestMethod]
    [DataRow("resnet18", "bn2")]
    [DataRow("resnet50", "bn3")]
    public void ZeroInitResidualZeroesTheLastNormOfEveryBlock(string name, string lastNorm)
    {
        TorchRuntime.EnsureLoaded();
        using var model = ModelRegistry.Create(name, new ModelOptions { ZeroInitResidual = true });
        var lastWeights = model.state_dict().Where(e => e.Key.StartsWith("layer", StringComparison.Ordinal) && e.Key.EndsWith($".{lastNorm}.weight", StringComparison.Ordinal)).ToList();
        Assert.AreEqual(ResNetFamily.Architectures.Single(a => a.Name == name).Layers.Sum(), lastWeights.Count);
        foreach (var (key, value) in lastWeights) Assert.IsTrue(value.eq(Scalars.Zero).all().item<bool>(), key);
        Assert.IsTrue(model.state_dict()["layer1.0.bn1.weight"].eq(Scalars.One).all().item<bool>(), "other norms keep weight 1");
    }
}
