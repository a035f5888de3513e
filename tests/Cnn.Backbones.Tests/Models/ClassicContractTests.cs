using System.Text.RegularExpressions;
using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.Backbones.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// The backbone contract on the classic families: feature stages (the module named by each <see cref="FeatureInfo"/> really
/// produces that map), features-only mode, head reset, stage groups, input-size errors, DenseNet's old checkpoint keys, and
/// LeNet-5's 28×28 padding and ability to learn.
/// </summary>
[TestClass]
public sealed class ClassicContractTests
{
    public static IEnumerable<object[]> AllModels =>
        ClassicArchitectureTests.Families.SelectMany(f => f.Models).Select(d => new object[] { d.Name });

    private static int TestSize(string name) => name switch { "lenet5" => 32, "inception_v3" => 75, _ => 64 };

    private static Backbone Create(string name, ModelOptions? options = null)
    {
        var defaults = ClassicArchitectureTests.Definition(name).DefaultOptions ?? new ModelOptions();
        return ModelRegistry.Create(name, options is null ? defaults : options with { InChannels = defaults.InChannels });
    }

    private static int NominalReduction(long input, long size) => 1 << (int)Math.Round(Math.Log2((double)input / size));

    [TestMethod]
    [DynamicData(nameof(AllModels))]
    public void FeatureInfoNamesTheModulesThatProduceTheStageMaps(string name)
    {
        TorchRuntime.EnsureLoaded();
        using var model = Create(name, new ModelOptions { FeaturesOnly = true });
        model.eval();
        // Big enough that every map's size rounds to its nominal reduction (AlexNet's last map is 1×1 at 64×64).
        int size = name switch { "alexnet" => 224, "inception_v3" => 299, _ => TestSize(name) };
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module);
        var captured = new Dictionary<string, Tensor>();
        var removers = new List<Action>();
        foreach (var info in model.FeatureInfo)
        {
            Assert.IsTrue(modules.TryGetValue(info.ModuleName, out var module), $"{info.ModuleName} is not a module of {name}");
            var hook = ((nn.Module<Tensor, Tensor>)module).register_forward_hook((m, input, output) =>
            {
                captured[info.ModuleName] = output.detach().clone().DetachFromDisposeScope();
                return output;
            });
            removers.Add(hook.remove);
        }
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var stages = model.ForwardStages(randn(2, model.InChannels, size, size));
        foreach (var remove in removers) remove();

        Assert.HasCount(model.FeatureInfo.Count, stages);
        for (int i = 0; i < stages.Count; i++)
        {
            var info = model.FeatureInfo[i];
            Assert.AreEqual(info.NumChannels, (int)stages[i].shape[1], $"{info.ModuleName} channels");
            Assert.AreEqual(info.Reduction, NominalReduction(name == "lenet5" ? 28 : size, stages[i].shape[2]), $"{info.ModuleName} reduction");
            Assert.IsTrue(ResNetReference.Identical(captured[info.ModuleName], stages[i]), $"{info.ModuleName}'s output is stage {i}");
        }
        CollectionAssert.AreEqual(stages[^1].shape, model.forward(randn(2, model.InChannels, size, size)).shape, "features-only forward is the last map");
        Assert.AreEqual(0, model.NumClasses);
        Assert.ThrowsExactly<InvalidOperationException>(() => model.ForwardHead(stages[^1]));
        Assert.ThrowsExactly<InvalidOperationException>(() => model.ResetClassifier(10));
        Assert.IsFalse(model.state_dict().Keys.Any(k => k.StartsWith(model.PretrainedConfig.Classifier + ".", StringComparison.Ordinal)), "no classifier");
        foreach (var t in captured.Values) t.Dispose();
    }

    [TestMethod]
    [DynamicData(nameof(AllModels))]
    public void StageGroupsPartitionEveryParameterAndInputsBelowTheMinimumAreRejected(string name)
    {
        TorchRuntime.EnsureLoaded();
        var definition = ClassicArchitectureTests.Definition(name);
        using var model = definition.Factory(definition.DefaultOptions ?? new ModelOptions(), META);
        var grouped = model.GetStageParameters().SelectMany(g => g.Parameters.Select(p => p.Name)).OrderBy(n => n, StringComparer.Ordinal).ToArray();
        CollectionAssert.AreEqual(model.named_parameters().Select(p => p.name).OrderBy(n => n, StringComparer.Ordinal).ToArray(), grouped, "each parameter in exactly one stage");
        Assert.IsTrue(model.GetStageParameters().All(g => g.Parameters.Count > 0), "no empty stage");
        Assert.AreEqual("head", model.StageGroups[^1].Name);
        Assert.IsTrue(model.StageGroups[^1].Contains(model.PretrainedConfig.Classifier + ".weight"), "the head group holds the classifier");

        int min = model.MinInputSize;
        var error = Assert.ThrowsExactly<ArgumentException>(() => model.forward(empty(1, model.InChannels, min - 1, min + 10, device: META)));
        StringAssert.Contains(error.Message, $"at least {min}×{min}");
    }

    [TestMethod]
    [DataRow("alexnet", "classifier.6.")]
    [DataRow("vgg11", "classifier.6.")]
    [DataRow("squeezenet1_0", "classifier.1.")]
    [DataRow("densenet121", "classifier.")]
    [DataRow("googlenet", "fc.")]
    [DataRow("lenet5", "fc3.")]
    public void ResetClassifierChangesOnlyTheHeadAndZeroClassesGivesPreLogits(string name, string head)
    {
        TorchRuntime.EnsureLoaded();
        using var model = Create(name);
        var before = model.state_dict().ToDictionary(e => e.Key, e => e.Value.clone());
        var oldHead = model.GetClassifier();
        model.ResetClassifier(7);
        var after = model.state_dict();
        CollectionAssert.AreEqual(before.Keys.ToArray(), after.Keys.ToArray(), "keys and their order are kept");
        foreach (var (key, value) in after)
        {
            if (key.StartsWith(head, StringComparison.Ordinal))
                Assert.AreEqual(7, value.shape[0], key);
            else
                Assert.IsTrue(ResNetReference.Identical(value, before[key]), $"{key} changed");
        }
        Assert.AreNotSame(oldHead, model.GetClassifier());
        Assert.AreEqual(7, model.NumClasses);
        Assert.IsTrue(model.named_modules().Any(m => m.module == model.GetClassifier() && m.name + "." == head), "the new head is registered in place");
        foreach (var t in before.Values) t.Dispose();

        int size = TestSize(name);
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = randn(2, model.InChannels, size, size);
        CollectionAssert.AreEqual(new long[] { 2, 7 }, model.forward(x).shape);

        model.ResetClassifier(0);
        Assert.IsFalse(model.state_dict().Keys.Any(k => k.StartsWith(head, StringComparison.Ordinal)));
        var pooled = model.forward(x);
        CollectionAssert.AreEqual(new long[] { 2, model.NumFeatures }, pooled.shape);
        ResNetReference.AssertClose(model.ForwardHead(model.ForwardFeatures(x), preLogits: true), pooled, $"{name} without classes = pre-logits");

        using var created = Create(name, new ModelOptions { NumClasses = 0 });
        created.eval();
        CollectionAssert.AreEqual(new long[] { 2, created.NumFeatures }, created.forward(x).shape);
    }

    [TestMethod]
    public void DenseNetLoadsOldStyleCheckpointKeys()
    {
        TorchRuntime.EnsureLoaded();
        string path = ClassicReference.Parity("densenet121", 64).WeightsPath;
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
            Assert.IsTrue(ResNetReference.Identical(value, file[key]), $"{key} not loaded");
    }

    [TestMethod]
    public void GreyImagesGetTheFirstConvSummedOverRgb()
    {
        TorchRuntime.EnsureLoaded();
        string path = ClassicReference.Parity("squeezenet1_1", 64).WeightsPath;
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
        Assert.IsTrue(ResNetReference.Identical(model.forward(padded), model.forward(x28)), "28×28 is zero-padded to 32×32");
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
