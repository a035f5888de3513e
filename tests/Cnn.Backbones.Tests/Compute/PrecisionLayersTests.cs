using Cnn.Tests.Shared;
using Cnn.Backbones.Compute;
using Cnn.Backbones.Native;
using TorchSharp;
using Cnn.Backbones.Tests.Models;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Compute;

/// <summary>Our convolution and linear layers: torch's keys, initialisation and arithmetic, and the precision scope.</summary>
[TestClass]
[DoNotParallelize] // same-seed initialisation shares the global generator
public sealed class PrecisionLayersTests
{
    [TestMethod]
    public void LayersDrawTheSameInitialWeightsAsTorchSharpsOwnAndHaveTorchsKeys()
    {
        TorchRuntime.EnsureLoaded();
        torch.manual_seed(5);
        using var theirs = nn.Conv2d(6, 8, (3, 5), stride: (2, 1), padding: (1, 2), groups: 2);
        using var theirLinear = nn.Linear(7, 3);
        torch.manual_seed(5);
        using var ours = Ops.Conv2d(6, 8, (3, 5), stride: (2, 1), padding: (1, 2), groups: 2);
        using var ourLinear = Ops.Linear(7, 3);
        CollectionAssert.AreEqual(theirs.state_dict().Keys.ToArray(), ours.state_dict().Keys.ToArray());
        Assert.IsTrue(TensorAssert.Identical(theirs.weight, ours.weight) && TensorAssert.Identical(theirs.bias!, ours.bias!), "conv init");
        Assert.IsTrue(TensorAssert.Identical(theirLinear.weight, ourLinear.weight) && TensorAssert.Identical(theirLinear.bias!, ourLinear.bias!), "linear init");

        using var x = randn(2, 6, 9, 11);
        Assert.IsTrue(TensorAssert.Identical(theirs.call(x), ours.call(x)), "float32 convolution is torch's");
        using var v = randn(4, 7);
        Assert.IsTrue(TensorAssert.Identical(theirLinear.call(v), ourLinear.call(v)), "float32 linear is torch's");
    }

    [TestMethod]
    public void InsideABFloat16ScopeTheLayersComputeInBFloat16AndGradientsReachTheFloat32Weights()
    {
        TorchRuntime.EnsureLoaded();
        using var conv = Ops.Conv2d(3, 4, 3, padding: 1);
        using var x = randn(2, 3, 8, 8);
        Tensor y;
        using (MixedPrecision.Enter(ScalarType.BFloat16))
        {
            Assert.AreEqual(ScalarType.BFloat16, MixedPrecision.ComputeType);
            using (MixedPrecision.Enter(null)) Assert.IsNull(MixedPrecision.ComputeType, "a nested float32 scope");
            Assert.AreEqual(ScalarType.BFloat16, MixedPrecision.ComputeType, "the outer scope is restored");
            y = conv.call(x);
        }
        Assert.IsNull(MixedPrecision.ComputeType);
        Assert.AreEqual(ScalarType.BFloat16, y.dtype);
        using var expected = nn.functional.conv2d(x.to(ScalarType.BFloat16), conv.weight.to(ScalarType.BFloat16), conv.bias!.to(ScalarType.BFloat16), padding: [1, 1]);
        Assert.IsTrue(TensorAssert.Identical(expected, y), "the convolution of the bfloat16-cast operands");
        y.to(ScalarType.Float32).sum().backward();
        Assert.AreEqual(ScalarType.Float32, conv.weight.grad!.dtype);
        Assert.AreEqual(ScalarType.Float32, conv.weight.dtype);
        Assert.ThrowsExactly<ArgumentException>(() => MixedPrecision.Enter(ScalarType.Int32));
    }

    [TestMethod]
    public void ChannelsLastIsTheNhwcLayoutOfTheSameValues()
    {
        TorchRuntime.EnsureLoaded();
        using var x = randn(2, 3, 4, 5);
        using var last = MemoryFormat.ToChannelsLast(x);
        Assert.IsTrue(MemoryFormat.IsChannelsLast(last));
        Assert.IsFalse(MemoryFormat.IsChannelsLast(x));
        CollectionAssert.AreEqual(new long[] { 60, 1, 15, 3 }, last.stride());
        Assert.IsTrue(TensorAssert.Identical(x, last));
    }

    [TestMethod]
    public void ModuleToReplacesTheParametersTheLayerComputesWith()
    {
        TorchRuntime.EnsureLoaded();
        using var conv = Ops.Conv2d(2, 4, 3, padding: 1);
        using var linear = Ops.Linear(3, 2);
        conv.to(ScalarType.Float64);
        linear.to(ScalarType.Float64);
        foreach (var layer in new nn.Module[] { conv, linear })
        {
            CollectionAssert.AreEqual(new[] { "weight", "bias" }, layer.named_parameters().Select(p => p.name).ToArray(), "torch's keys, no others");
            CollectionAssert.AreEqual(new[] { "weight", "bias" }, layer.state_dict().Keys.ToArray());
            foreach (var (name, p) in layer.named_parameters()) Assert.AreEqual(ScalarType.Float64, p.dtype, name);
        }
        Assert.AreEqual(ScalarType.Float64, conv.weight.dtype);
        Assert.AreEqual(ScalarType.Float64, conv.bias!.dtype);
        Assert.AreSame(conv.get_parameter("weight"), conv.weight, "the property and the registered parameter must be one tensor");
        using var x = randn(1, 2, 5, 5, dtype: ScalarType.Float64);
        using var y = conv.call(x);
        Assert.AreEqual(ScalarType.Float64, y.dtype);
        y.sum().backward();
        Assert.IsNotNull(conv.weight.grad, "the gradient reaches the registered parameter");
        using var v = randn(4, 3, dtype: ScalarType.Float64);
        using var z = linear.call(v);
        Assert.AreEqual(ScalarType.Float64, z.dtype);
    }

    public static IEnumerable<object[]> SmallestOfEachFamily => FamilyCases.SmallestRows;

    /// <summary>
    /// Module.to() (the path of a CUDA move too) re-registers parameters by reflection over fields; keys must survive it, in every
    /// family (the smallest variant of each, at the smallest input it takes; without auxiliary classifiers, which the plain forward
    /// pass does not run).
    /// </summary>
    [TestMethod]
    [DynamicData(nameof(SmallestOfEachFamily))]
    public void AModelConvertedWithToKeepsTorchsKeysAndTrainsItsParameters(string architecture)
    {
        TorchRuntime.EnsureLoaded();
        var definition = Cnn.Backbones.Models.ModelRegistry.GetDefinition(architecture);
        var defaults = definition.DefaultOptions ?? new Cnn.Backbones.Models.ModelOptions();
        int size = FamilyCases.InputSize(architecture);
        var options = defaults with { ImageSize = size, AuxLogits = definition.Capabilities.AuxLogits ? false : null };
        using var model = Cnn.Backbones.Models.ModelRegistry.Create(architecture, options);
        var keys = model.state_dict().Keys.ToArray();
        var parameterNames = model.named_parameters().Select(p => p.name).ToArray();
        model.to(ScalarType.Float64);
        CollectionAssert.AreEqual(keys, model.state_dict().Keys.ToArray(), "state-dict keys after to(float64)");
        CollectionAssert.AreEqual(parameterNames, model.named_parameters().Select(p => p.name).ToArray(), "parameters after to(float64)");
        using var x = randn(2, defaults.InChannels, size, size, dtype: ScalarType.Float64);
        using var loss = model.call(x).sum();
        loss.backward();
        foreach (var (name, p) in model.named_parameters())
            Assert.IsTrue(p.dtype == ScalarType.Float64 && p.grad is not null, $"{name}: float64, with a gradient");
    }
}
