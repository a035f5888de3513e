using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// timm's SE-ResNet (torchvision has none): keys are torchvision's ResNet keys with <c>se.fc1/fc2</c> after each <c>bn3</c>, the
/// parameter count is timm's, the SE block equals its direct computation, and the model learns a small synthetic task.
/// </summary>
[TestClass]
public sealed class SeResNetTests
{
    [TestMethod]
    [DataRow("seresnet50", "resnet50")]
    [DataRow("seresnet101", "resnet101")]
    public void KeysAreTorchvisionResNetKeysWithTimmSqueezeExcitationAfterBn3(string name, string plain)
    {
        TorchRuntime.EnsureLoaded();
        using var model = new ModelSpec(name).CreateOnMeta();
        var keys = model.state_dict().Select(e => (e.Key, e.Value.shape)).ToArray();
        var reference = ModelReference.Architecture(plain).Keys;
        var withoutSe = keys.Where(k => !k.Key.Contains(".se.", StringComparison.Ordinal)).ToArray();
        CollectionAssert.AreEqual(reference.Select(k => k.Key).ToArray(), withoutSe.Select(k => k.Key).ToArray(), "non-SE keys are torchvision's, in order");
        for (int i = 0; i < reference.Count; i++) CollectionAssert.AreEqual(reference[i].Shape, withoutSe[i].shape, reference[i].Key);

        // Each block: ... bn3.num_batches_tracked, se.fc1.weight [C/16, C, 1, 1], se.fc1.bias, se.fc2.weight [C, C/16, 1, 1], se.fc2.bias, (downsample).
        var blocks = keys.Select(k => k.Key).Where(k => k.EndsWith(".bn3.num_batches_tracked", StringComparison.Ordinal)).ToArray();
        Assert.AreEqual(model is ResNet r ? r.Architecture.Layers.Sum() : -1, blocks.Length);
        foreach (var bn3 in blocks)
        {
            int at = Array.FindIndex(keys, k => k.Key == bn3);
            string block = bn3[..^".bn3.num_batches_tracked".Length];
            CollectionAssert.AreEqual(new[] { $"{block}.se.fc1.weight", $"{block}.se.fc1.bias", $"{block}.se.fc2.weight", $"{block}.se.fc2.bias" },
                keys.Skip(at + 1).Take(4).Select(k => k.Key).ToArray(), block);
            long c = keys[Array.FindIndex(keys, k => k.Key == $"{block}.bn3.weight")].shape[0];
            CollectionAssert.AreEqual(new[] { c / 16, c, 1, 1 }, keys[at + 1].shape, $"{block}: rd channels = C/16 (a multiple of 8)");
            CollectionAssert.AreEqual(new[] { c, c / 16, 1, 1 }, keys[at + 3].shape, block);
        }
    }

    [TestMethod]
    public void Seresnet50HasTimmsParameterCount()
    {
        TorchRuntime.EnsureLoaded();
        // The count timm reports for seresnet50 (1000 classes); torchvision has no SE-ResNet to generate it from.
        Assert.AreEqual(28_088_024L, ModelRegistry.Get("seresnet50").ParameterCount);
        // The SE blocks add exactly 2·C·C/16 + C/16 + C per block to torchvision's resnet50.
        long se = new[] { (3, 256L), (4, 512L), (6, 1024L), (3, 2048L) }.Sum(b => b.Item1 * (2 * b.Item2 * (b.Item2 / 16) + b.Item2 / 16 + b.Item2));
        Assert.AreEqual(ModelReference.Architecture("resnet50").Parameters + se, ModelRegistry.Get("seresnet50").ParameterCount);
        Assert.AreEqual(ModelReference.Architecture("resnet101").Parameters + se + 17 * (2 * 1024L * 64 + 64 + 1024), ModelRegistry.Get("seresnet101").ParameterCount);
    }

    [TestMethod]
    public void SqueezeExcitationEqualsItsDirectComputation()
    {
        TorchRuntime.EnsureLoaded();
        using var model = ModelRegistry.Create("seresnet50");
        var se = (SqueezeExcitation)model.named_modules().Single(m => m.name == "layer2.1.se").module;
        var parameters = model.state_dict();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = randn(2, 512, 5, 7, generator: new Generator(3));
        var w1 = parameters["layer2.1.se.fc1.weight"].view(32, 512);
        var b1 = parameters["layer2.1.se.fc1.bias"];
        var w2 = parameters["layer2.1.se.fc2.weight"].view(512, 32);
        var b2 = parameters["layer2.1.se.fc2.bias"];
        var squeezed = x.mean([2, 3]);                                  // [2, 512]
        var hidden = squeezed.matmul(w1.t()).Plus(b1).relu();              // [2, 32]
        var gate = hidden.matmul(w2.t()).Plus(b2).sigmoid();               // [2, 512]
        var expected = x * gate.view(2, 512, 1, 1);
        var actual = se.call(x);
        Assert.IsTrue(actual.allclose(expected, rtol: 1e-5, atol: 1e-6), $"max|diff| = {(actual - expected).abs().max().item<float>()}");
        Assert.IsFalse(actual.allclose(x), "the block must change its input");
    }

    [TestMethod]
    public void Seresnet50LearnsFashionMnist()
    {
        TorchRuntime.EnsureLoaded();
        manual_seed(11);
        using var model = ModelRegistry.Create("seresnet50", new ModelOptions { NumClasses = 10, InChannels = 1 });
        double accuracy = FashionMnistSample.TrainAndTest(model, trainCount: 2000, testCount: 500, steps: 100, batch: 32, learningRate: 1e-3, () =>
        {
            var seGrad = model.named_parameters().Single(p => p.name == "layer4.2.se.fc2.weight").parameter.grad;
            Assert.IsTrue(seGrad is not null && seGrad.abs().sum().item<float>() > 0, "the SE layers are trained");
        });
        Assert.IsTrue(accuracy > 0.6, $"held-out accuracy after 100 steps {accuracy:P1}; chance is 10%");
    }
}
