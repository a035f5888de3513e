using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// Numerical parity with torchvision (LeNet-5: with a plain PyTorch definition): a seeded model with randomised BatchNorm
/// statistics is saved with <c>torch.save</c>, loaded strictly here, and every stage map, the pre-logits and the logits must
/// agree to max|diff| ≤ 1e-4 · max|ref| in eval mode. Every torchvision variant is checked; a fixture that no other test shares
/// is deleted after its test, so VGG's half-gigabyte state dicts never pile up on disk.
/// </summary>
[TestClass]
public sealed class ClassicParityTests
{
    [TestMethod]
    [DataRow("alexnet", 64)]
    [DataRow("vgg11", 64)]
    [DataRow("vgg11_bn", 64)]
    [DataRow("vgg13", 64)]
    [DataRow("vgg13_bn", 64)]
    [DataRow("vgg16", 64)]
    [DataRow("vgg16_bn", 64)]
    [DataRow("vgg19", 64)]
    [DataRow("vgg19_bn", 64)]
    [DataRow("googlenet", 64)]
    [DataRow("googlenet+notransform", 64)]
    [DataRow("googlenet+aux", 64)]
    [DataRow("inception_v3", 75)]
    [DataRow("inception_v3+noaux", 75)]
    [DataRow("densenet121", 64)]
    [DataRow("densenet161", 64)]
    [DataRow("densenet169", 64)]
    [DataRow("densenet201", 64)]
    [DataRow("squeezenet1_0", 64)]
    [DataRow("squeezenet1_1", 64)]
    [DataRow("lenet5", 32)]
    [DataRow("lenet5", 28)]
    public void EvalOutputsMatchTheReference(string spec, int size)
    {
        TorchRuntime.EnsureLoaded();
        using var own = ClassicReference.IsShared(spec, size) ? null : ClassicReference.Fixture.Generate([(spec, size, "eval")])[0];
        var fixture = own ?? ClassicReference.Parity(spec, size);
        string name = ClassicReference.NameOf(spec);
        using var model = ModelRegistry.Create(name, ClassicReference.OptionsFor(spec, ClassicArchitectureTests.Definition(name).DefaultOptions));
        var report = model.LoadWeights(fixture.WeightsPath, strict: true);
        Assert.IsTrue(report.IsComplete, report.ToString());
        Assert.AreEqual(model.state_dict().Count, report.Loaded);
        model.eval();

        using var outputs = fixture.LoadOutputs();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var input = outputs["input"];
        var stages = model.ForwardStages(input);
        Assert.AreEqual(fixture.StageCount, stages.Count, "number of feature stages");
        for (int i = 0; i < stages.Count; i++)
            ResNetReference.AssertClose(outputs[$"stage{i}"], stages[i], $"{spec}@{size} {model.FeatureInfo[i].ModuleName}");
        ResNetReference.AssertClose(outputs["pre_logits"], model.ForwardHead(stages[^1], preLogits: true), $"{spec}@{size} pre_logits");
        ResNetReference.AssertClose(outputs["logits"], model.forward(input), $"{spec}@{size} logits");
        var train = model.ForwardTrain(input);
        Assert.IsEmpty(train.Auxiliary, "eval mode has no auxiliary outputs");
        ResNetReference.AssertClose(outputs["logits"], train.Logits, $"{spec}@{size} ForwardTrain logits in eval");
    }
}
