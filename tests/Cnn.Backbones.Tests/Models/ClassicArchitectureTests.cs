using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// Every classic variant (AlexNet, VGG, GoogLeNet, Inception v3, DenseNet, SqueezeNet, with and without auxiliary heads) against
/// torchvision 0.14: state-dict keys (in order) and shapes, parameter counts, IMAGENET1K_V1 configuration and minimum input size;
/// LeNet-5 against a plain PyTorch definition of the 1998 design.
/// </summary>
[TestClass]
public sealed class ClassicArchitectureTests
{
    internal static readonly IModelFamily[] Families =
        [new LeNetFamily(), new AlexNetFamily(), new VggFamily(), new GoogLeNetFamily(), new InceptionV3Family(), new DenseNetFamily(), new SqueezeNetFamily()];

    internal static ModelDefinition Definition(string name) => Families.SelectMany(f => f.Models).Single(d => d.Name == name);

    /// <summary>Builds a model on the meta device (no memory) with the spec's options.</summary>
    internal static Backbone BuildMeta(string spec)
    {
        var definition = Definition(ClassicReference.NameOf(spec));
        return definition.Factory(ClassicReference.OptionsFor(spec, definition.DefaultOptions), META);
    }

    public static IEnumerable<object[]> Specs => ClassicReference.AllSpecs.Append("lenet5").Select(s => new object[] { s });

    public static IEnumerable<object[]> Names => ClassicReference.AllSpecs.Where(s => !s.Contains('+')).Select(s => new object[] { s });

    [TestMethod]
    [DynamicData(nameof(Specs))]
    public void StateDictKeysOrderShapesAndParameterCountMatchTorchvision(string spec)
    {
        TorchRuntime.EnsureLoaded();
        var reference = ClassicReference.Architecture(spec);
        using var model = BuildMeta(spec);

        var actual = model.state_dict().Select(e => (e.Key, e.Value.shape)).ToArray();
        var firstDifference = Enumerable.Range(0, Math.Min(actual.Length, reference.Keys.Count))
            .FirstOrDefault(i => actual[i].Key != reference.Keys[i].Key || !actual[i].shape.SequenceEqual(reference.Keys[i].Shape), -1);
        Assert.AreEqual(-1, firstDifference, firstDifference < 0 ? "" :
            $"entry {firstDifference}: ours {actual[firstDifference].Key} [{string.Join(", ", actual[firstDifference].shape)}], " +
            $"reference {reference.Keys[firstDifference].Key} [{string.Join(", ", reference.Keys[firstDifference].Shape)}]");
        Assert.AreEqual(reference.Keys.Count, actual.Length, "number of state-dict entries");
        long parameters = model.parameters().Sum(p => p.numel());
        Assert.AreEqual(reference.Parameters, parameters, "sum(p.numel()) over parameters");
        if (!spec.Contains('+'))
        {
            Assert.AreEqual(reference.Parameters, ModelRegistry.Get(spec).ParameterCount, "registry parameter count (default options)");
            if (reference.Config is { } config)
                Assert.AreEqual(config.MetaParameters, parameters, "torchvision weights meta num_params");
        }
    }

    [TestMethod]
    public void LeNet5HasTheParameterCountOfTheIssue()
    {
        // 61,706 is the count the issue specifies for 10 classes; the PyTorch reference above must agree with it too.
        Assert.AreEqual(61_706, ClassicReference.Architecture("lenet5").Parameters);
        Assert.AreEqual(61_706, ModelRegistry.Get("lenet5").ParameterCount);
        var info = ModelRegistry.Get("lenet5");
        Assert.AreEqual(new InputSize(1, 32, 32), info.DefaultConfig.InputSize);
        Assert.AreEqual(10, info.DefaultConfig.NumClasses);
    }

    [TestMethod]
    [DynamicData(nameof(Names))]
    public void PretrainedConfigAndMinimumSizeMatchTorchvisionImageNet1KV1(string name)
    {
        TorchRuntime.EnsureLoaded();
        var reference = ClassicReference.Architecture(name);
        var expected = reference.Config!;
        var config = ModelRegistry.Get(name).DefaultConfig;
        Assert.AreEqual(new InputSize(3, expected.Crop, expected.Crop), config.InputSize);
        Assert.AreEqual((double)expected.Crop / expected.Resize, config.CropPct, 1e-12, "crop_pct = crop / resize");
        CollectionAssert.AreEqual(expected.Mean, config.Mean.ToArray());
        CollectionAssert.AreEqual(expected.Std, config.Std.ToArray());
        Assert.AreEqual(expected.Interpolation, config.Interpolation);
        Assert.AreEqual(expected.Classes, config.NumClasses);
        var keys = reference.Keys.ToDictionary(k => k.Key, k => k.Shape);
        Assert.IsTrue(keys.ContainsKey(config.FirstConv + ".weight"), config.FirstConv);
        Assert.AreEqual(3, keys[config.FirstConv + ".weight"][1], "first conv takes RGB");
        Assert.AreEqual(expected.Classes, keys[config.Classifier + ".weight"][0], "classifier rows");
        using var model = BuildMeta(name);
        Assert.AreEqual(expected.MinSize, model.MinInputSize, "torchvision meta min_size");
    }

    [TestMethod]
    public void RegistryListsEveryClassicVariantUnderItsFamily()
    {
        TorchRuntime.EnsureLoaded();
        var listed = Families.SelectMany(f => f.Models).Select(d => (d.Name, d.Family)).ToArray();
        CollectionAssert.AreEquivalent(ClassicReference.AllSpecs.Where(s => !s.Contains('+')).Append("lenet5").ToArray(), listed.Select(l => l.Name).ToArray());
        foreach (var (name, family) in listed)
        {
            Assert.IsTrue(ModelRegistry.Exists(name), name);
            Assert.AreEqual(family, ModelRegistry.Get(name).Family);
            Assert.IsTrue(ModelRegistry.List(family).Any(m => m.Name == name));
        }
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => ModelRegistry.Create("vgg16bn")).Message, "vgg16_bn");
    }
}
