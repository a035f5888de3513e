using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using TorchSharp.Modules;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// Every registered model and variant spec against its reference (torchvision 0.14, or the script's own builder for LeNet-5 and
/// SE-ResNet), built on the meta device: state-dict keys in order and shapes, parameter counts, torchvision's IMAGENET1K_V1
/// configuration and minimum size, classifier dropout and stochastic-depth rates; and the registry's listing.
/// </summary>
[TestClass]
public sealed class ModelArchitectureTests
{
    public static IEnumerable<object[]> Specs => ModelCases.SpecRows;

    public static IEnumerable<object[]> WithTorchvisionWeights => ModelCases.WithTorchvisionWeightsRows;

    [TestMethod]
    [DynamicData(nameof(Specs))]
    public void StateDictKeysShapesAndParameterCountsMatchTheReference(string spec)
    {
        TorchRuntime.EnsureLoaded();
        var s = new ModelSpec(spec);
        var reference = ModelReference.Architecture(spec);
        using var model = s.CreateOnMeta();

        TensorAssert.AssertSameKeys(reference.Keys, model, spec);
        long parameters = model.parameters().Sum(p => p.numel());
        Assert.AreEqual(reference.Parameters, parameters, $"{spec}: sum(p.numel()) over parameters");
        if (!s.IsPlain) return;
        Assert.AreEqual(reference.Parameters, ModelRegistry.Get(spec).ParameterCount, $"{spec}: registry parameter count");
        if (reference.Weights is { } weights)
            Assert.AreEqual(weights.MetaParameters, parameters, $"{spec}: torchvision weights meta num_params");
    }

    [TestMethod]
    [DynamicData(nameof(WithTorchvisionWeights))]
    public void PretrainedConfigAndMinimumSizeMatchTorchvisionImageNet1KV1(string name)
    {
        TorchRuntime.EnsureLoaded();
        var s = new ModelSpec(name);
        var reference = ModelReference.Architecture(name);
        Assert.IsNotNull(reference.Weights, $"{name}: torchvision has no IMAGENET1K_V1 weights; give the model a NoTorchvisionWeights quirk with the reason");
        var expected = reference.Weights;
        var config = ModelRegistry.Get(name).DefaultConfig;
        Assert.AreEqual(new InputSize(3, expected.Crop, expected.Crop), config.InputSize, name);
        Assert.AreEqual((double)expected.Crop / expected.Resize, config.CropPct, 1e-12, $"{name}: crop_pct = crop / resize");
        CollectionAssert.AreEqual(expected.Mean, config.Mean.ToArray(), name);
        CollectionAssert.AreEqual(expected.Std, config.Std.ToArray(), name);
        Assert.AreEqual(expected.Interpolation, config.Interpolation, name);
        Assert.AreEqual(expected.Classes, config.NumClasses, name);
        var keys = reference.Keys.ToDictionary(k => k.Key, k => k.Shape);
        Assert.IsTrue(keys.ContainsKey(config.FirstConv + ".weight"), $"{name}: FirstConv {config.FirstConv} has no weight");
        Assert.AreEqual(3, keys[config.FirstConv + ".weight"][1], $"{name}: the first conv takes RGB");
        Assert.IsTrue(keys.ContainsKey(config.Classifier + ".weight"), $"{name}: Classifier {config.Classifier} has no weight");
        Assert.AreEqual(expected.Classes, keys[config.Classifier + ".weight"][0], $"{name}: classifier rows");

        using var model = s.CreateOnMeta();
        if (s.Quirks.MinSizeDiffers is null)
            Assert.AreEqual(expected.MinSize, model.MinInputSize, $"{name}: torchvision meta min_size");
        else
            Assert.AreNotEqual(expected.MinSize, model.MinInputSize, $"{name}: the sizes agree now; drop the MinSizeDiffers quirk ({s.Quirks.MinSizeDiffers})");
    }

    [TestMethod]
    public void ModelsWithoutTorchvisionWeightsSayWhyAndHaveNone()
    {
        TorchRuntime.EnsureLoaded();
        var without = ModelCases.Names.Where(n => n.Quirks.NoTorchvisionWeights is not null).ToArray();
        Assert.IsNotEmpty(without);
        foreach (var s in without)
            Assert.IsNull(ModelReference.Architecture(s.Spec).Weights, $"{s}: torchvision has weights now; drop its NoTorchvisionWeights quirk");
    }

    [TestMethod]
    [DynamicData(nameof(Specs))]
    public void ClassifierDropoutAndStochasticDepthRatesMatchTheReference(string spec)
    {
        TorchRuntime.EnsureLoaded();
        var reference = ModelReference.Architecture(spec);
        using var model = new ModelSpec(spec).CreateOnMeta();
        Assert.AreEqual(reference.Dropout, model.DropRate, 1e-12, $"{spec}: classifier dropout");
        var dropPath = model.named_modules().Select(m => m.module).OfType<StochasticDepth>().Select(d => d.Probability).ToArray();
        Assert.HasCount(reference.DropPath.Length, dropPath, $"{spec}: number of stochastic-depth modules");
        for (int i = 0; i < dropPath.Length; i++)
            Assert.AreEqual(reference.DropPath[i], dropPath[i], 1e-9, $"{spec}: stochastic-depth rate of block {i}");
    }

    [TestMethod]
    public void RegistryListsEveryModelUnderItsFamilyCaseInsensitively()
    {
        TorchRuntime.EnsureLoaded();
        var listed = ModelRegistry.List();
        CollectionAssert.AllItemsAreUnique(listed.Select(m => m.Name).ToArray());
        foreach (var info in listed)
        {
            Assert.IsTrue(ModelRegistry.Exists(info.Name), info.Name);
            Assert.IsTrue(ModelRegistry.Exists(info.Name.ToUpperInvariant()), $"{info.Name}: names are case-insensitive");
            Assert.AreEqual(info.Family, ModelRegistry.Get(info.Name).Family);
            Assert.AreEqual(info.Family, ModelRegistry.GetDefinition(info.Name).Family);
            Assert.IsTrue(ModelRegistry.List(info.Family).Any(m => m.Name == info.Name), $"{info.Name} under {info.Family}");
            Assert.IsTrue(ModelRegistry.List(info.Family.ToUpperInvariant()).Any(m => m.Name == info.Name), "family names are case-insensitive");
        }
        foreach (var family in listed.Select(m => m.Family).Distinct())
            Assert.IsTrue(ModelRegistry.List(family).All(m => m.Family == family), family);
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => ModelRegistry.Create("vgg16bn")).Message, "vgg16_bn");
    }

    [TestMethod]
    public void EveryTorchvisionVariantOfARegisteredFamilyIsRegistered()
    {
        TorchRuntime.EnsureLoaded();
        // For each torchvision module that defines a registered model, every builder there with IMAGENET1K_V1 weights.
        var families = ModelReference.TorchvisionFamilies;
        Assert.IsNotEmpty(families);
        var missing = families.SelectMany(f => f.Value.Where(name => !ModelRegistry.Exists(name)).Select(name => $"{name} ({f.Key})")).ToArray();
        Assert.IsEmpty(missing, $"torchvision variants of registered families that are not registered: {string.Join(", ", missing)}");
        foreach (var s in ModelCases.Names)
        {
            var dump = ModelReference.Architecture(s.Spec);
            Assert.AreEqual(dump.Family is null, s.Quirks.NoTorchvisionWeights is not null,
                $"{s}: a model has a torchvision builder exactly when it has no NoTorchvisionWeights quirk");
        }
    }
}
