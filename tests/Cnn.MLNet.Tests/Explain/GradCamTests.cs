using Cnn.Backbones.Models;
using Cnn.MLNet.Explain;
using Cnn.MLNet.Networks;
using Cnn.MLNet.Scoring;
using static TorchSharp.torch;

namespace Cnn.MLNet.Tests.Explain;

[TestClass]
public sealed class GradCamTests
{
    private static GradCamReference s_reference = null!;

    [ClassInitialize]
    public static void Generate(TestContext _)
    {
        using var probe = ModelRegistry.Create("mobilenet_v2");
        s_reference = new GradCamReference(probe.FeatureInfo[^1].ModuleName);
    }

    [ClassCleanup]
    public static void Cleanup() => s_reference.Dispose();

    private static Backbone LoadModel(string architecture = "resnet18")
    {
        var model = ModelRegistry.Create(architecture, new ModelOptions { NumClasses = 5 });
        model.LoadWeights(architecture == "resnet18" ? s_reference.WeightsPath : s_reference.MobileNetWeightsPath);
        return model;
    }

    [TestMethod]
    [DataRow("layer4", null, null, DisplayName = "layer4, predicted class")]
    [DataRow("layer3_class3", 3, 3, DisplayName = "layer3, class 3")]
    public void MatchesPyTorchGradCam(string name, int? stage, int? targetClass)
    {
        using var model = LoadModel();
        model.train(); // Compute must switch to eval (BatchNorm running statistics) and back
        var map = GradCam.Compute(model, s_reference.Tensors["input"], targetClass, stage);
        Assert.IsTrue(model.training, "the model's training mode is restored");
        Assert.AreEqual(s_reference.Class(name), map.TargetClass);
        Assert.AreEqual(name[..6], map.StageName);
        AssertMap(map, name);
        Assert.IsTrue(model.parameters().All(p => p.grad is null), "no parameter gradient is accumulated");
    }

    /// <summary>MobileNetV2's features end with a 1×1 convolution after its last stage (FinishFeatures): the gradient must flow through it.</summary>
    [TestMethod]
    public void MatchesPyTorchThroughTheLayersAfterTheLastStage()
    {
        using var model = LoadModel("mobilenet_v2");
        var map = GradCam.Compute(model, s_reference.Tensors["input"], targetClass: s_reference.Class("mobilenet_v2"));
        Assert.AreEqual(model.FeatureInfo.Count - 1, map.Stage);
        AssertMap(map, "mobilenet_v2");
    }

    [TestMethod]
    public void AFrozenModelOrANoGradScopeGivesTheSameMap()
    {
        using var model = LoadModel();
        var free = GradCam.Compute(model, s_reference.Tensors["input"]);
        model.FreezeUpTo(model.StageGroups.Count - 1);
        Assert.IsTrue(model.parameters().All(p => !p.requires_grad));
        GradCamMap frozen;
        using (no_grad())
            frozen = GradCam.Compute(model, s_reference.Tensors["input"]);
        CollectionAssert.AreEqual(free.Raw, frozen.Raw);
        CollectionAssert.AreEqual(free.Heatmap, frozen.Heatmap);
    }

    [TestMethod]
    public void GreyInputIsDenormalisedToEqualChannels()
    {
        var options = new Cnn.MLNet.Imaging.PreprocessOptions { Height = 1, Width = 3, Channels = 1, Mean = [0.5f], Std = [0.25f] };
        byte[] grey = [0, 77, 255];
        var chw = grey.Select(v => (v / 255f - 0.5f) / 0.25f).ToArray();
        var image = PreparedImage.Denormalise(chw, 1, 3, options);
        CollectionAssert.AreEqual(new byte[] { 0, 0, 0, 77, 77, 77, 255, 255, 255 }, image.Pixels);
    }

    [TestMethod]
    public void ClassifierExplainsTheImageAsTheModelSawIt()
    {
        var network = NetworkBuilder.Build(
            NetworkSpec.For("resnet18", new ModelOptions { NumClasses = 5, WeightsPath = s_reference.WeightsPath, ImageSize = 64 }, cropPct: 0.875), CPU);
        using var classifier = new CnnClassifierTransformer(network, LabelKeys.FromNames(5, ["ant", "bee", "cat", "dog", "eel"]), "ImagePath", "Score", "PredictedLabel", 1);
        var explanation = classifier.Explain(s_reference.ImagePath);
        int expected = s_reference.Class("image");
        Assert.AreEqual(expected, explanation.ClassIndex);
        Assert.AreEqual(new[] { "ant", "bee", "cat", "dog", "eel" }[expected], explanation.ClassName);
        AssertMap(explanation.Map, "image");
        Assert.AreEqual(s_reference.Tensors["image.probabilities"][0, expected].item<float>(), explanation.Probability, 1e-5f);
        var crop = s_reference.Tensors["crop"].data<float>().ToArray();
        CollectionAssert.AreEqual(crop.Select(v => (byte)v).ToArray(), explanation.Input.Pixels, "de-normalised input = PIL's 8-bit crop");

        var overlay = explanation.Overlay();
        Plots.TestPictures.Keep("grad-cam-input.png", explanation.Input.ToPng());
        Plots.TestPictures.Keep("grad-cam-overlay.png", overlay.ToPng());
        Assert.AreEqual((64, 64), (overlay.Width, overlay.Height));
        int hottest = Array.IndexOf(explanation.Heatmap, 1f), coldest = Array.IndexOf(explanation.Heatmap, 0f);
        var hot = overlay[hottest % 64, hottest / 64];
        var cold = overlay[coldest % 64, coldest / 64];
        AssertBlend(explanation.Input[hottest % 64, hottest / 64], hot, (128, 0, 0), "hottest pixel: half image, half jet dark red");
        AssertBlend(explanation.Input[coldest % 64, coldest / 64], cold, (0, 0, 128), "coldest pixel: half image, half jet dark blue");
    }

    [TestMethod]
    public void OutOfRangeStageAndClassNameTheValidOnes()
    {
        using var model = LoadModel();
        var input = s_reference.Tensors["input"];
        var stage = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => GradCam.Compute(model, input, stage: 5));
        StringAssert.Contains(stage.Message, "0 = act1 (64 channels, /2)");
        StringAssert.Contains(stage.Message, "4 = layer4 (512 channels, /32)");
        var cls = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => GradCam.Compute(model, input, targetClass: 5));
        StringAssert.Contains(cls.Message, "5 classes (0..4)");
        using var batch = cat([input, input]);
        Assert.ThrowsExactly<ArgumentException>(() => GradCam.Compute(model, batch));
    }

    private static void AssertBlend((byte R, byte G, byte B) under, (byte R, byte G, byte B) actual, (byte R, byte G, byte B) jet, string what)
    {
        static byte Half(byte a, byte b) => (byte)Math.Round(0.5 * a + 0.5 * b);
        Assert.AreEqual((Half(under.R, jet.R), Half(under.G, jet.G), Half(under.B, jet.B)), actual, what);
    }

    private static void AssertMap(GradCamMap map, string name)
    {
        var raw = s_reference.Tensors[name + ".raw"];
        var heatmap = s_reference.Tensors[name + ".heatmap"];
        Assert.AreEqual(((int)raw.shape[2], (int)raw.shape[3]), (map.RawHeight, map.RawWidth), "raw map size");
        Assert.AreEqual(((int)heatmap.shape[2], (int)heatmap.shape[3]), (map.Height, map.Width), "heatmap size");
        AssertClose(raw.data<float>().ToArray(), map.Raw, $"{name} raw CAM");
        AssertClose(heatmap.data<float>().ToArray(), map.Heatmap, $"{name} normalised heatmap");
        AssertClose(s_reference.Tensors[name + ".probabilities"].data<float>().ToArray(), map.Probabilities, $"{name} probabilities");
    }

    /// <summary>max|actual − expected| ≤ 1e-4 · max|expected|, on a reference that is not all zeros.</summary>
    private static void AssertClose(float[] expected, float[] actual, string what)
    {
        Assert.HasCount(expected.Length, actual, what);
        float scale = expected.Max(Math.Abs);
        float worst = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
        Assert.IsTrue(scale > 0, $"{what}: the reference is all zeros, the comparison would be meaningless");
        Console.WriteLine($"{what}: max|diff| = {worst:G3}, max|ref| = {scale:G4}, relative {worst / scale:G3}");
        Assert.IsTrue(worst <= 1e-4f * scale, $"{what}: max|diff| {worst:G4} > 1e-4 x {scale:G4}");
    }
}
