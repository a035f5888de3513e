using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.Backbones.Weights;
using static TorchSharp.torch;

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
        // torchvision's ViT only accepts its image_size: the registered vit_b_16 at 224 (batch 1), plus a 160-pixel model whose
        // position embedding is resampled from the 224 one by timm's rule.
        new("vit_b_16", 224, "encoder", "out", Batch: 1, ResampleSize: 160),
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
    [DataRow("vit_b_16_224")]
    public void EvalOutputsMatchTorchvision(string id)
    {
        TorchRuntime.EnsureLoaded();
        var c = Cases.Single(x => x.Id == id);
        ModernReference.AssertParity(c, Fixtures.Value[id]);
    }

    /// <summary>The other torchvision variants of the modern families (same code paths at other widths, depths, group widths,
    /// patch sizes): one Python process per variant, its files deleted after the test so the large ones never pile up on disk.</summary>
    private static readonly ModernReference.ParityCase[] OtherVariants =
    [
        .. new[] { "b1", "b2", "b3", "b4", "b5", "b6", "b7", "v2_m", "v2_l" }.Select(v => new ModernReference.ParityCase($"efficientnet_{v}", 64, "avgpool", "in")),
        .. new[] { "small", "base", "large" }.Select(v => new ModernReference.ParityCase($"convnext_{v}", 64, "avgpool", "in")),
        .. new[] { "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf" }.SelectMany(v => new[]
        {
            new ModernReference.ParityCase($"regnet_y_{v}", 64, "avgpool", "in"), new ModernReference.ParityCase($"regnet_x_{v}", 64, "avgpool", "in"),
        }),
        .. new[] { "b_32", "l_16", "l_32" }.Select(v => new ModernReference.ParityCase($"vit_{v}", 224, "encoder", "out", Batch: 1)),
    ];

    public static IEnumerable<object[]> OtherVariantIds => OtherVariants.Select(c => new object[] { c.Id });

    [TestMethod]
    [DynamicData(nameof(OtherVariantIds))]
    public void EveryOtherVariantMatchesTorchvision(string id)
    {
        TorchRuntime.EnsureLoaded();
        var c = OtherVariants.Single(x => x.Id == id);
        var fixture = ModernReference.MakeFixtures([c])[id];
        try
        {
            ModernReference.AssertParity(c, fixture);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(fixture.Directory)!, recursive: true);
        }
    }

    [TestMethod]
    public void VitWeightsFor224LoadIntoA160ModelWithTimmsBicubicPositionEmbeddingResampling()
    {
        TorchRuntime.EnsureLoaded();
        var fixture = Fixtures.Value["vit_b_16_224"];
        using var model = ModelRegistry.Create("vit_b_16", new ModelOptions { ImageSize = 160 });
        Assert.AreEqual(10, ((VisionTransformer)model).GridSize);
        var report = model.LoadWeights(fixture.WeightsPath, strict: true);
        Assert.IsTrue(report.IsComplete, report.ToString());
        model.eval();
        using var outputs = WeightFile.Load(fixture.OutputsPath);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        ResNetReference.AssertClose(outputs["resampled_pos"], model.state_dict()["encoder.pos_embedding"], "resampled pos_embedding");
        ResNetReference.AssertClose(outputs["resampled_logits"], model.forward(outputs["resampled_input"]), "vit_b_16@160 logits");
        // The model refuses inputs of the size its embedding was not made for.
        var wrong = Assert.ThrowsExactly<ArgumentException>(() => model.forward(zeros(1, 3, 224, 224)));
        StringAssert.Contains(wrong.Message, "ImageSize");
    }
}
