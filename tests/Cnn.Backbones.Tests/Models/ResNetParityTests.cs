using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// Numerical parity with torchvision: a seeded torchvision model with randomised BatchNorm statistics is saved with
/// <c>torch.save</c>, loaded strictly here, and every stage map, the pooled pre-logits and the logits must agree to
/// max|diff| ≤ 1e-4 · max|ref| in eval mode. Every torchvision variant is checked; each fixture is deleted after its test, so the
/// large ones (up to 0.5 GB of weights) never pile up on disk.
/// </summary>
[TestClass]
public sealed class ResNetParityTests
{
    [TestMethod]
    [DataRow("resnet18", 64)]
    [DataRow("resnet34", 64)]
    [DataRow("resnet50", 64)]
    [DataRow("resnet101", 64)]
    [DataRow("resnet152", 64)]
    [DataRow("resnext50_32x4d", 64)]
    [DataRow("resnext101_32x8d", 64)]
    [DataRow("resnext101_64x4d", 64)]
    [DataRow("wide_resnet50_2", 64)]
    [DataRow("wide_resnet101_2", 64)]
    [DataRow("resnet50", 224)]
    public void EvalOutputsMatchTorchvision(string name, int size)
    {
        TorchRuntime.EnsureLoaded();
        using var fixture = ResNetReference.ParityFixture.Generate(name, size);
        using var model = ModelRegistry.Create(name);
        var report = model.LoadWeights(fixture.WeightsPath, strict: true);
        Assert.IsTrue(report.IsComplete, report.ToString());
        Assert.AreEqual(model.state_dict().Count, report.Loaded);
        model.eval();

        using var outputs = fixture.LoadOutputs();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var input = outputs["input"];
        var stages = model.ForwardStages(input);
        Assert.HasCount(5, stages);
        for (int i = 0; i < stages.Count; i++)
            ResNetReference.AssertClose(outputs[ResNetReference.OutputNames[i]], stages[i], $"{name}@{size} {model.FeatureInfo[i].ModuleName}");
        ResNetReference.AssertClose(outputs["pre_logits"], model.ForwardHead(stages[^1], preLogits: true), $"{name}@{size} pre_logits");
        ResNetReference.AssertClose(outputs["logits"], model.forward(input), $"{name}@{size} logits");
    }
}
