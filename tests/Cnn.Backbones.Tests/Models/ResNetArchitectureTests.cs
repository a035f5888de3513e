using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Models;

/// <summary>Every ResNet variant against torchvision 0.14: state-dict keys (in order) and shapes, parameter counts, weights configuration.</summary>
[TestClass]
public sealed class ResNetArchitectureTests
{
    [TestMethod]
    [DataRow("resnet18")]
    [DataRow("resnet34")]
    [DataRow("resnet50")]
    [DataRow("resnet101")]
    [DataRow("resnet152")]
    [DataRow("resnext50_32x4d")]
    [DataRow("resnext101_32x8d")]
    [DataRow("resnext101_64x4d")]
    [DataRow("wide_resnet50_2")]
    [DataRow("wide_resnet101_2")]
    public void StateDictKeysOrderShapesAndParameterCountMatchTorchvision(string name)
    {
        TorchRuntime.EnsureLoaded();
        var reference = ResNetReference.Architecture(name);
        var architecture = ResNetFamily.Architectures.Single(a => a.Name == name);
        using var model = new ResNet(architecture, device: META);

        var actual = model.state_dict().Select(e => (e.Key, e.Value.shape)).ToArray();
        var firstDifference = Enumerable.Range(0, Math.Min(actual.Length, reference.Keys.Count))
            .FirstOrDefault(i => actual[i].Key != reference.Keys[i].Key || !actual[i].shape.SequenceEqual(reference.Keys[i].Shape), -1);
        Assert.AreEqual(-1, firstDifference, firstDifference < 0 ? "" :
            $"entry {firstDifference}: ours {actual[firstDifference].Key} [{string.Join(", ", actual[firstDifference].shape)}], " +
            $"torchvision {reference.Keys[firstDifference].Key} [{string.Join(", ", reference.Keys[firstDifference].Shape)}]");
        Assert.AreEqual(reference.Keys.Count, actual.Length, "number of state-dict entries");

        long parameters = model.parameters().Sum(p => p.numel());
        Assert.AreEqual(reference.Parameters, parameters, "sum(p.numel()) over parameters");
        Assert.AreEqual(reference.MetaParameters, parameters, "torchvision weights meta num_params");
        Assert.AreEqual(reference.Parameters, ModelRegistry.Get(name).ParameterCount, "registry parameter count");
    }

    [TestMethod]
    [DataRow("resnet18")]
    [DataRow("resnet34")]
    [DataRow("resnet50")]
    [DataRow("resnet101")]
    [DataRow("resnet152")]
    [DataRow("resnext50_32x4d")]
    [DataRow("resnext101_32x8d")]
    [DataRow("resnext101_64x4d")]
    [DataRow("wide_resnet50_2")]
    [DataRow("wide_resnet101_2")]
    public void PretrainedConfigMatchesTorchvisionImageNet1KV1Transforms(string name)
    {
        TorchRuntime.EnsureLoaded();
        var reference = ResNetReference.Architecture(name);
        var config = ModelRegistry.Get(name).DefaultConfig;

        Assert.AreEqual(new InputSize(3, reference.Crop, reference.Crop), config.InputSize);
        Assert.AreEqual((double)reference.Crop / reference.Resize, config.CropPct, 1e-12, "crop_pct = crop / resize");
        CollectionAssert.AreEqual(reference.Mean, config.Mean.ToArray());
        CollectionAssert.AreEqual(reference.Std, config.Std.ToArray());
        Assert.AreEqual(reference.Interpolation, config.Interpolation);
        Assert.AreEqual(reference.Classes, config.NumClasses);
        // FirstConv and Classifier must name real modules with weights in the state dict.
        var keys = reference.Keys.Select(k => k.Key).ToHashSet();
        Assert.Contains(config.FirstConv + ".weight", keys);
        Assert.Contains(config.Classifier + ".weight", keys);
        Assert.AreEqual(reference.Classes, reference.Keys.Single(k => k.Key == config.Classifier + ".weight").Shape[0]);
    }

    [TestMethod]
    public void RegistryListsEveryVariantWithFamilyAndComputedParameterCount()
    {
        TorchRuntime.EnsureLoaded();
        var listed = ModelRegistry.List("resnet");
        CollectionAssert.AreEquivalent(ResNetReference.AllVariants, listed.Select(m => m.Name).ToArray());
        foreach (var info in listed)
        {
            Assert.AreEqual(ResNetFamily.Family, info.Family);
            Assert.AreEqual(ResNetReference.Architecture(info.Name).Parameters, info.ParameterCount, info.Name);
            Assert.IsTrue(ModelRegistry.Exists(info.Name));
            Assert.IsTrue(ModelRegistry.Exists(info.Name.ToUpperInvariant()), "names are case-insensitive");
        }
        Assert.IsTrue(ModelRegistry.List().Count >= listed.Count);
    }
}
