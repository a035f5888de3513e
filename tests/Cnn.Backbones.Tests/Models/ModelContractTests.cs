using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// The backbone contract on every registered model: feature stages (the module each <see cref="FeatureInfo"/> names really
/// produces that map), features-only mode and out indices, stage groups and freezing, head reset, the minimum input size, and the
/// architecture-dependent options each model's <see cref="ModelCapabilities"/> accept or reject.
/// </summary>
[TestClass]
public sealed class ModelContractTests
{
    public static IEnumerable<object[]> Names => ModelCases.NameRows;

    public static IEnumerable<object[]> ForwardNames => ModelCases.ForwardContractRows;

    private static int NominalReduction(long input, long size) => 1 << (int)Math.Round(Math.Log2((double)input / size));

    /// <summary>A stage output as a map [N, C, H, W]: a ViT's tokens (torchvision's or CLIP's) are laid out on their patch grid.</summary>
    private static Tensor AsMap(Backbone model, Tensor stage) => model switch
    {
        VisionTransformer vit => vit.TokensToMap(stage),
        ClipImageBackbone clip => clip.TokensToMap(stage),
        _ => stage,
    };

    [TestMethod]
    [DynamicData(nameof(ForwardNames))]
    public void FeatureInfoNamesTheModulesThatProduceTheStageMapsAndFeaturesOnlyHasNoHead(string name)
    {
        TorchRuntime.EnsureLoaded();
        var spec = new ModelSpec(name);
        using var model = spec.Create(o => o with { FeaturesOnly = true });
        model.eval();
        int size = spec.Quirks.StageCheckSize ?? spec.Quirks.TestSize;
        if (model is VisionTransformer vit) size = vit.ImageSize;
        if (model is ClipImageBackbone clip) size = clip.ImageSize;
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
        var x = randn(2, model.InChannels, size, size);
        var stages = model.ForwardStages(x);
        foreach (var remove in removers) remove();

        Assert.HasCount(model.FeatureInfo.Count, stages);
        for (int i = 0; i < stages.Count; i++)
        {
            var info = model.FeatureInfo[i];
            var map = AsMap(model, stages[i]);
            Assert.AreEqual(info.NumChannels, (int)map.shape[1], $"{name} {info.ModuleName} channels");
            Assert.AreEqual(info.Reduction, NominalReduction(spec.Quirks.ReductionInput ?? size, map.shape[2]), $"{name} {info.ModuleName} reduction");
            Assert.IsTrue(TensorAssert.Identical(captured[info.ModuleName], stages[i]), $"{name}: {info.ModuleName}'s output is stage {i}");
        }
        CollectionAssert.AreEqual(stages[^1].shape, model.forward(x).shape, $"{name}: features-only forward is the last map");
        Assert.AreEqual(0, model.NumClasses);
        Assert.ThrowsExactly<InvalidOperationException>(() => model.ForwardHead(stages[^1]));
        Assert.ThrowsExactly<InvalidOperationException>(() => model.ResetClassifier(10));
        string head = model.PretrainedConfig.Classifier.Split('.')[0] + ".";
        Assert.IsFalse(model.state_dict().Keys.Any(k => k.StartsWith(head, StringComparison.Ordinal)), $"{name}: features-only has no {head}*");
        foreach (var t in captured.Values) t.Dispose();

        using var partial = spec.Create(o => o with { FeaturesOnly = true, OutIndices = [0, -1] });
        var maps = partial.ForwardStages(x);
        CollectionAssert.AreEqual(new[] { partial.FeatureInfo[0].NumChannels, partial.FeatureInfo[^1].NumChannels },
            maps.Select(m => (int)AsMap(partial, m).shape[1]).ToArray(), $"{name}: OutIndices [0, -1]");
    }

    [TestMethod]
    [DynamicData(nameof(Names))]
    public void StageGroupsPartitionEveryParameterAndInputsBelowTheMinimumAreRejected(string name)
    {
        TorchRuntime.EnsureLoaded();
        using var model = new ModelSpec(name).CreateOnMeta();
        var grouped = model.GetStageParameters().SelectMany(g => g.Parameters.Select(p => p.Name)).OrderBy(n => n, StringComparer.Ordinal).ToArray();
        CollectionAssert.AreEqual(model.named_parameters().Select(p => p.name).OrderBy(n => n, StringComparer.Ordinal).ToArray(), grouped,
            $"{name}: each parameter in exactly one stage");
        Assert.IsTrue(model.GetStageParameters().All(g => g.Parameters.Count > 0), $"{name}: no empty stage");
        Assert.AreEqual("head", model.StageGroups[^1].Name);
        Assert.IsTrue(model.StageGroups[^1].Contains(model.PretrainedConfig.Classifier + ".weight"), $"{name}: the head group holds the classifier");

        int min = model.MinInputSize;
        var error = Assert.ThrowsExactly<ArgumentException>(() => model.forward(empty(1, model.InChannels, min - 1, min + 10, device: META)));
        StringAssert.Contains(error.Message, $"at least {min}×{min}");
    }

    [TestMethod]
    [DynamicData(nameof(Names))]
    public void FreezeUpToTheLastBodyStageLeavesOnlyTheHeadTrainable(string name)
    {
        TorchRuntime.EnsureLoaded();
        using var model = new ModelSpec(name).CreateOnMeta();
        var groups = model.StageGroups;
        foreach (var (parameter, _) in model.named_parameters())
            Assert.AreEqual(1, groups.Count(g => g.Contains(parameter)), $"{name}: {parameter} must be in exactly one stage group");
        model.FreezeUpTo(groups.Count - 2);
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToArray();
        Assert.IsTrue(trainable.Length > 0 && trainable.All(p => groups[^1].Contains(p)),
            $"{name}: only the head stays trainable; got {string.Join(", ", trainable.Take(5))}");
        Assert.Contains(model.PretrainedConfig.Classifier + ".weight", trainable, $"{name}: the classifier is in the head group");
        CollectionAssert.AreEquivalent(groups.Take(groups.Count - 1).Select(g => g.Name).ToArray(), model.FrozenStages.ToArray());
    }

    [TestMethod]
    [DynamicData(nameof(ForwardNames))]
    public void ResetClassifierReplacesOnlyTheHeadAndZeroClassesGivesPreLogits(string name)
    {
        TorchRuntime.EnsureLoaded();
        var spec = new ModelSpec(name);
        using var model = spec.Create();
        string classifier = model.PretrainedConfig.Classifier;
        var heads = spec.Quirks.AuxClassifiers.Prepend(classifier).Select(h => h + ".").ToArray();
        var before = model.state_dict().ToDictionary(e => e.Key, e => e.Value.clone());
        var oldHead = model.GetClassifier();
        model.ResetClassifier(7);
        var after = model.state_dict();
        CollectionAssert.AreEqual(before.Keys.ToArray(), after.Keys.ToArray(), $"{name}: keys and their order are kept");
        foreach (var (key, value) in after)
        {
            if (heads.Any(key.StartsWith))
                Assert.AreEqual(7, value.shape[0], key);
            else
                Assert.IsTrue(TensorAssert.Identical(value, before[key]), $"{name}: {key} changed");
        }
        foreach (var t in before.Values) t.Dispose();
        Assert.AreEqual(7L, after[classifier + ".weight"].shape[0]);
        Assert.AreNotSame(oldHead, model.GetClassifier());
        Assert.AreEqual(7, model.NumClasses);
        Assert.IsTrue(model.named_modules().Any(m => m.module == model.GetClassifier() && m.name == classifier), $"{name}: the new head is registered as {classifier}");

        int size = spec.Quirks.TestSize;
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = randn(2, model.InChannels, size, size);
        CollectionAssert.AreEqual(new long[] { 2, 7 }, model.forward(x).shape);

        model.ResetClassifier(0);
        Assert.IsFalse(model.state_dict().Keys.Any(k => heads.Any(k.StartsWith)), $"{name}: no classification layers left");
        var pooled = model.forward(x);
        CollectionAssert.AreEqual(new long[] { 2, model.NumFeatures }, pooled.shape);
        Assert.IsTrue(TensorAssert.Identical(pooled, model.ForwardHead(model.ForwardFeatures(x), preLogits: true)), $"{name}: without classes, pre-logits out");

        using var created = spec.Create(o => o with { NumClasses = 0 });
        created.eval();
        CollectionAssert.AreEqual(new long[] { 2, created.NumFeatures }, created.forward(x).shape);
    }

    [TestMethod]
    [DynamicData(nameof(Names))]
    public void GlobalPoolIsCheckedAgainstTheModelsCapabilities(string name)
    {
        TorchRuntime.EnsureLoaded();
        var spec = new ModelSpec(name);
        var capabilities = spec.Definition.Capabilities;
        using (var model = spec.CreateOnMeta())
        {
            // Declared once per family: every CNN pools by average only, the Vision Transformer by class token or average.
            string[] expected = model is VisionTransformer ? ["token", "avg"] : ["avg"];
            CollectionAssert.AreEqual(expected, capabilities.GlobalPools.ToArray(), name);
        }
        foreach (var pool in new[] { "avg", "token" })
        {
            if (capabilities.GlobalPools.Contains(pool))
            {
                using var accepted = spec.Definition.Build(spec.Options(o => o with { GlobalPool = pool }), META);
                continue;
            }
            var error = Assert.ThrowsExactly<ArgumentException>(() => ModelRegistry.Create(name, spec.Options(o => o with { GlobalPool = pool })));
            string takers = string.Join(", ", ModelRegistry.AllDefinitions.Where(d => d.Capabilities.GlobalPools.Contains(pool)).Select(d => d.Family).Distinct());
            StringAssert.StartsWith(error.Message, $"{name} does not support GlobalPool = \"{pool}\". {name} supports: {capabilities.Describe()}. ");
            StringAssert.Contains(error.Message, $"GlobalPool = \"{pool}\" is taken by the {takers} famil");
            Assert.AreEqual("GlobalPool", error.ParamName);
            StringAssert.Contains(error.Message, "GlobalPool \"avg\" (or null for \"avg\")");
        }
        Assert.ThrowsExactly<ArgumentException>(() => ModelRegistry.Create(name, spec.Options(o => o with { GlobalPool = "max" })));
    }

    [TestMethod]
    [DynamicData(nameof(Names))]
    public void BlockCountsAreAcceptedExactlyByResNetLayouts(string name)
    {
        TorchRuntime.EnsureLoaded();
        var spec = new ModelSpec(name);
        bool isResNet;
        using (var model = spec.CreateOnMeta()) isResNet = model is ResNet;
        Assert.AreEqual(isResNet, spec.Definition.Capabilities.BlockCounts, $"{name}: BlockCounts capability");
        if (isResNet)
        {
            using var changed = (ResNet)spec.Definition.Build(spec.Options(o => o with { BlockCounts = [1, 2, 1, 3] }), META);
            CollectionAssert.AreEqual(new[] { 1, 2, 1, 3 }, changed.Architecture.Layers.ToArray(), name);
            return;
        }
        var error = Assert.ThrowsExactly<ArgumentException>(() => ModelRegistry.Create(name, spec.Options(o => o with { BlockCounts = [2, 2, 2, 3] })));
        StringAssert.StartsWith(error.Message, $"{name} does not support BlockCounts = [2, 2, 2, 3]. {name} supports: ");
        StringAssert.Contains(error.Message, "BlockCounts null (its block counts are fixed)");
    }

    /// <summary>
    /// The options only some families take (auxiliary classifiers, torchvision's transform_input and zero_init_residual) build
    /// where the family declares them and are refused elsewhere, naming the option and the families that take it, as timm refuses
    /// a keyword argument a model does not take.
    /// </summary>
    [TestMethod]
    [DynamicData(nameof(Names))]
    public void FamilyOptionsAreAcceptedWhereDeclaredAndRefusedNamingTheirFamilies(string name)
    {
        TorchRuntime.EnsureLoaded();
        var spec = new ModelSpec(name);
        var capabilities = spec.Definition.Capabilities;
        var cases = new (string Option, bool Declared, Func<ModelCapabilities, bool> Takes, Func<ModelOptions, ModelOptions> Set)[]
        {
            ("AuxLogits", capabilities.AuxLogits, c => c.AuxLogits, o => o with { AuxLogits = false }),
            ("AuxLossWeight", capabilities.AuxLogits, c => c.AuxLogits, o => o with { AuxLossWeight = 0.25 }),
            ("TransformInput", capabilities.TransformInput, c => c.TransformInput, o => o with { TransformInput = false }),
            ("ZeroInitResidual", capabilities.ZeroInitResidual, c => c.ZeroInitResidual, o => o with { ZeroInitResidual = true }),
        };
        foreach (var (option, declared, takes, set) in cases)
        {
            if (declared)
            {
                using var accepted = spec.Definition.Build(spec.Options(set), META);
                continue;
            }
            var error = Assert.ThrowsExactly<ArgumentException>(() => spec.Definition.Build(spec.Options(set), META).Dispose(), $"{name}: {option}");
            Assert.AreEqual(option, error.ParamName);
            StringAssert.StartsWith(error.Message, $"{name} does not support {option} = ");
            var takers = ModelRegistry.AllDefinitions.Where(d => takes(d.Capabilities)).Select(d => d.Family).Distinct().ToArray();
            Assert.IsNotEmpty(takers, $"some family takes {option}");
            StringAssert.Contains(error.Message, $"is taken by the {string.Join(", ", takers)} famil");
        }
    }
}
