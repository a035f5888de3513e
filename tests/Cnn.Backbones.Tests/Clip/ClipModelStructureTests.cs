using System.Text.Json;
using Cnn.Backbones.Clip;
using Cnn.Backbones.Weights;
using Cnn.Tests.Shared;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Clip;

/// <summary>ViT-L-14's state-dict keys and shapes against OpenCLIP's, one forward pass, and the refusal of mismatched weights.</summary>
[TestClass]
public sealed class ClipModelStructureTests
{
    [TestMethod]
    public void VitL14_HasOpenClipsKeysAndShapes_AndRuns()
    {
        var reference = JsonSerializer.Deserialize<Dictionary<string, long[]>>(OpenClipReference.Run("""
            model = open_clip.create_model('ViT-L-14', pretrained=None)
            print(json.dumps({k: list(v.shape) for k, v in model.state_dict().items()}))
            """))!;
        using var model = ClipModel.Create("ViT-L-14");
        using var ours = StateDict.FromModule(model);
        CollectionAssert.AreEquivalent(reference.Keys.ToArray(), ours.Keys.ToArray(), "state-dict keys");
        foreach (var (key, shape) in reference)
            CollectionAssert.AreEqual(shape, ours[key].shape, key);

        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var image = model.EncodeImage(randn(1, 3, 224, 224), normalize: true);
        var text = model.EncodeText(["a photo of a cat"], normalize: true);
        CollectionAssert.AreEqual(new long[] { 1, 768 }, image.shape);
        CollectionAssert.AreEqual(new long[] { 1, 768 }, text.shape);
        Assert.IsTrue(image.isfinite().all().item<bool>() && text.isfinite().all().item<bool>(), "finite outputs");
    }

    [TestMethod]
    public void WeightsOfAnotherSizeOrTower_AreRefusedByName()
    {
        using var b32 = ClipModel.Create("ViT-B-32");
        using var weights = StateDict.FromModule(b32);
        Assert.AreEqual("ViT-B-32", ClipWeights.Infer(weights)!.Name);

        using var b16 = ClipModel.Create("ViT-B-16");
        var size = Assert.ThrowsExactly<ClipWeightsException>(() => b16.LoadWeights(weights, "b32.pt"));
        StringAssert.Contains(size.Message, "b32.pt holds ViT-B-32");
        StringAssert.Contains(size.Message, "patch 32");
        StringAssert.Contains(size.Message, "model is ViT-B-16");

        using var rn50 = ClipModel.Create("RN50");
        var tower = Assert.ThrowsExactly<ClipWeightsException>(() => rn50.LoadWeights(weights, "b32.pt"));
        StringAssert.Contains(tower.Message, "ViT image tower");
        StringAssert.Contains(tower.Message, "RN50 has a ModifiedResNet one");

        using var notClip = new StateDict();
        notClip.Add("fc.weight", zeros(2, 2));
        var other = Assert.ThrowsExactly<ClipWeightsException>(() => b32.LoadWeights(notClip, "resnet.pth"));
        StringAssert.Contains(other.Message, "resnet.pth is not an OpenCLIP CLIP state dict");

        // The same weights load into their own model, also under a DDP "module." prefix.
        using var wrapped = new StateDict();
        foreach (var (k, v) in weights) wrapped.Add("module." + k, v.alias());
        using var copy = new ClipModel(ClipModels.Get("ViT-B-32-quickgelu"));
        copy.LoadWeights(wrapped, "ddp.pt");
    }

    [TestMethod]
    public void UnknownModelName_ListsTheKnownOnes()
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() => ClipModels.Get("ViT-H-14"));
        StringAssert.Contains(e.Message, "ViT-B-32, ViT-B-16, ViT-L-14, RN50");
    }
}
