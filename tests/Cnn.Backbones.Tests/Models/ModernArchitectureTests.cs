using Cnn.Backbones.Models;
using Cnn.Backbones.Native;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// Every MobileNet, EfficientNet, ConvNeXt, RegNet and ViT variant against torchvision 0.14 (one Python process for all): state-dict
/// keys in order and shapes, parameter counts, IMAGENET1K_V1 transforms, classifier dropout and stochastic-depth rates.
/// Models are built on the meta device.
/// </summary>
[TestClass]
public sealed class ModernArchitectureTests
{
    internal static readonly string[] Variants =
    [
        "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
        "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_b4", "efficientnet_b5", "efficientnet_b6",
        "efficientnet_b7", "efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l",
        "convnext_tiny", "convnext_small", "convnext_base", "convnext_large",
        "regnet_y_400mf", "regnet_y_800mf", "regnet_y_1_6gf", "regnet_y_3_2gf", "regnet_y_8gf", "regnet_y_16gf", "regnet_y_32gf",
        "regnet_x_400mf", "regnet_x_800mf", "regnet_x_1_6gf", "regnet_x_3_2gf", "regnet_x_8gf", "regnet_x_16gf", "regnet_x_32gf",
        "vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32",
    ];

    private static readonly Dictionary<string, string[]> Families = new()
    {
        [MobileNetFamily.Family] = ["mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"],
        [EfficientNetFamily.Family] = Variants.Where(v => v.StartsWith("efficientnet", StringComparison.Ordinal)).ToArray(),
        [ConvNeXtFamily.Family] = Variants.Where(v => v.StartsWith("convnext", StringComparison.Ordinal)).ToArray(),
        [RegNetFamily.Family] = Variants.Where(v => v.StartsWith("regnet", StringComparison.Ordinal)).ToArray(),
        [VisionTransformerFamily.Family] = Variants.Where(v => v.StartsWith("vit", StringComparison.Ordinal)).ToArray(),
    };

    public static IEnumerable<object[]> VariantRows => Variants.Select(v => new object[] { v });

    [TestMethod]
    [DynamicData(nameof(VariantRows))]
    public void KeysShapesParameterCountsConfigAndRegularisationMatchTorchvision(string name)
    {
        TorchRuntime.EnsureLoaded();
        var reference = ModernReference.Architectures(Variants)[name];
        using var model = ModernReference.CreateOnMeta(name);

        ModernReference.AssertSameKeys(reference, model, name);
        long parameters = model.parameters().Sum(p => p.numel());
        Assert.AreEqual(reference.Parameters, parameters, $"{name}: sum(p.numel())");
        Assert.AreEqual(reference.MetaParameters, parameters, $"{name}: torchvision weights meta num_params");
        Assert.AreEqual(reference.Parameters, ModelRegistry.Get(name).ParameterCount, $"{name}: registry parameter count");

        ModernReference.AssertConfig(reference, ModelRegistry.Get(name).DefaultConfig, name);
        Assert.AreEqual(reference.Dropout, model.DropRate, 1e-12, $"{name}: classifier dropout");
        var dropPath = ModernReference.DropPathRates(model);
        Assert.HasCount(reference.DropPath.Length, dropPath, $"{name}: number of stochastic-depth modules");
        for (int i = 0; i < dropPath.Length; i++)
            Assert.AreEqual(reference.DropPath[i], dropPath[i], 1e-9, $"{name}: stochastic-depth rate of block {i}");
    }

    [TestMethod]
    public void RegistryListsEveryVariantByFamily()
    {
        TorchRuntime.EnsureLoaded();
        foreach (var (family, names) in Families)
        {
            var listed = ModelRegistry.List(family);
            CollectionAssert.AreEquivalent(names, listed.Select(m => m.Name).ToArray(), family);
            Assert.IsTrue(listed.All(m => m.Family == family));
        }
    }
}
