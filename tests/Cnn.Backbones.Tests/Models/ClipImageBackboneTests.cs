using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.Backbones.Onnx.Export;
using Cnn.Backbones.Tests.Onnx;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// What the registry-driven suites do not reach for the CLIP image towers: the ONNX export of a ViT tower (the suite exports the
/// family's smallest model, <c>clip_rn50</c>), here with QuickGELU, run in ONNX Runtime against the model; and the options refused.
/// </summary>
[TestClass]
public sealed class ClipImageBackboneTests
{
    [TestMethod]
    public void AViTTowerWithQuickGeluExportsToOnnxAndRunsAsTheModel()
    {
        TorchRuntime.EnsureLoaded();
        var spec = new ModelSpec("clip_vit_b32_quickgelu");
        using var scope = NewDisposeScope();
        using var model = OnnxExportCases.Create(spec);
        var result = OnnxExporter.Export(model, new OnnxExportOptions { ImageSize = spec.Quirks.TestSize });
        var input = OnnxExportCases.Input(result, batch: 3);
        double difference;
        using (no_grad()) difference = OnnxExportCases.RelativeDifference(OnnxExportCases.RunOnnx(result, input), model.call(input));
        Assert.IsLessThanOrEqualTo(1e-4, difference, $"ONNX Runtime vs the model: relative difference {difference}");
    }

    [TestMethod]
    public void ImageSizesThatDoNotFitTheTowerAndOtherChannelCountsAreRefused()
    {
        TorchRuntime.EnsureLoaded();
        var patch = Assert.ThrowsExactly<ArgumentException>(() => ModelRegistry.GetDefinition("clip_vit_b16").Build(new ModelOptions { ImageSize = 100 }, META));
        StringAssert.Contains(patch.Message, "not a multiple of 16");
        var stride = Assert.ThrowsExactly<ArgumentException>(() => ModelRegistry.GetDefinition("clip_rn50").Build(new ModelOptions { ImageSize = 100 }, META));
        StringAssert.Contains(stride.Message, "not a multiple of 32");
        var channels = Assert.ThrowsExactly<ArgumentException>(() => ModelRegistry.GetDefinition("clip_rn50").Build(new ModelOptions { InChannels = 1 }, META));
        StringAssert.Contains(channels.Message, "InChannels = 3");
        using var model = ModelRegistry.GetDefinition("clip_vit_b32").Build(new ModelOptions { ImageSize = 64 }, META);
        var size = Assert.ThrowsExactly<ArgumentException>(() => model.forward(empty(1, 3, 96, 96, device: META)));
        StringAssert.Contains(size.Message, "ModelOptions.ImageSize = 96");
    }
}
