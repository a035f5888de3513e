using Cnn.Backbones.Native;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// Numerical parity with torchvision for the modern families: a seeded torchvision model with randomised norms, layer scales and
/// zero-initialised parameters is saved with <c>torch.save</c>, loaded strictly here, and every feature stage, the features, the
/// pre-logits and the logits must agree to max|diff| ≤ 1e-4 · max|ref| in eval mode. One Python process makes every fixture.
/// </summary>
[TestClass]
public sealed class ModernParityTests
{
    private static readonly ModernReference.ParityCase[] Cases =
    [
        new("mobilenet_v2", 64, "features", "out"),
        new("mobilenet_v3_small", 64, "avgpool", "in"),
        new("mobilenet_v3_large", 64, "avgpool", "in"),
        new("efficientnet_b0", 64, "avgpool", "in"),
        new("efficientnet_v2_s", 64, "avgpool", "in"),
        new("convnext_tiny", 64, "avgpool", "in"),
        new("regnet_y_400mf", 64, "avgpool", "in"),
        new("regnet_x_400mf", 64, "avgpool", "in"),
    ];

    private static readonly Lazy<IReadOnlyDictionary<string, ModernReference.ParityFixture>> Fixtures = new(() => ModernReference.MakeFixtures(Cases));

    [TestMethod]
    [DataRow("mobilenet_v2_64")]
    [DataRow("mobilenet_v3_small_64")]
    [DataRow("mobilenet_v3_large_64")]
    [DataRow("efficientnet_b0_64")]
    [DataRow("efficientnet_v2_s_64")]
    [DataRow("convnext_tiny_64")]
    [DataRow("regnet_y_400mf_64")]
    [DataRow("regnet_x_400mf_64")]
    public void EvalOutputsMatchTorchvision(string id)
    {
        TorchRuntime.EnsureLoaded();
        var c = Cases.Single(x => x.Id == id);
        ModernReference.AssertParity(c, Fixtures.Value[id]);
    }
}
