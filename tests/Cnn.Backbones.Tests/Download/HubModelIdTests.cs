using Cnn.Tests.Shared;
using Cnn.Backbones.Weights.Download;

namespace Cnn.Backbones.Tests.Download;

[TestClass]
public sealed class HubModelIdTests
{
    [TestMethod]
    [DataRow("hf-hub:timm/resnet50.a1_in1k", "timm/resnet50.a1_in1k", "main", "models--timm--resnet50.a1_in1k")]
    [DataRow("hf-hub:timm/vit_base_patch16_224.augreg2_in21k_ft_in1k@v1.0", "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k", "v1.0",
             "models--timm--vit_base_patch16_224.augreg2_in21k_ft_in1k")]
    [DataRow("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K@refs/pr/3", "laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "refs/pr/3",
             "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K")]
    [DataRow("hf-hub:gpt2", "gpt2", "main", "models--gpt2")]
    public void Parses_RepositoryRevisionAndCacheFolder(string name, string repository, string revision, string folder)
    {
        var id = HubModelId.Parse(name);

        Assert.AreEqual(repository, id.Repository);
        Assert.AreEqual(revision, id.Revision);
        Assert.AreEqual(folder, id.CacheFolderName);
        Assert.AreEqual(id, HubModelId.Parse(id.ToString()), "ToString round-trips");
        Assert.IsTrue(HubModelId.TryParse(name, out var parsed) && parsed == id);
        Assert.IsTrue(HubModelId.IsHubName(name));
    }

    [TestMethod]
    public void DefaultRevisionIsMain_AndIsNotShown()
    {
        var id = new HubModelId("timm/resnet50.a1_in1k");
        Assert.AreEqual("main", id.Revision);
        Assert.AreEqual("hf-hub:timm/resnet50.a1_in1k", id.ToString());
        Assert.AreEqual("hf-hub:timm/resnet50.a1_in1k@v2", new HubModelId("timm/resnet50.a1_in1k", "v2").ToString());
    }

    [TestMethod]
    [DataRow("timm/resnet50.a1_in1k", "does not start with 'hf-hub:'")]
    [DataRow("resnet50", "does not start with 'hf-hub:'")]
    [DataRow("hf-hub:", "the repository is empty")]
    [DataRow("hf-hub:timm/a/b", "is not 'organization/name'")]
    [DataRow("hf-hub:timm/res net", "is not 'organization/name'")]
    [DataRow("hf-hub:/resnet50", "is not 'organization/name'")]
    [DataRow("hf-hub:timm/", "is not 'organization/name'")]
    [DataRow("hf-hub:timm/-resnet", "is not 'organization/name'")]
    [DataRow("hf-hub:timm/res--net", "contains '--' or '..'")]
    [DataRow("hf-hub:timm/resnet50@", "after '@' is not a revision")]
    [DataRow("hf-hub:timm/resnet50@a b", "after '@' is not a revision")]
    [DataRow("hf-hub:timm/resnet50@../../etc", "after '@' is not a revision")]
    public void MalformedNames_AreRefused_WithTheFormAndAnExample(string name, string problem)
    {
        var error = Assert.ThrowsExactly<FormatException>(() => HubModelId.Parse(name));

        StringAssert.Contains(error.Message, $"'{name}'");
        StringAssert.Contains(error.Message, problem);
        StringAssert.Contains(error.Message, "hf-hub:<organization>/<name>[@<revision>]");
        StringAssert.Contains(error.Message, "hf-hub:timm/resnet50.a1_in1k");
        Assert.IsFalse(HubModelId.TryParse(name, out _));
    }

    [TestMethod]
    public void NonHubNames_AreNotHubNames()
    {
        Assert.IsFalse(HubModelId.IsHubName(null));
        Assert.IsFalse(HubModelId.IsHubName("IMAGENET1K_V2"));
        Assert.IsFalse(HubModelId.IsHubName("resnet50.tv2_in1k"));
        Assert.IsFalse(HubModelId.IsHubName("/models/hf-hub:x.pth"));
        Assert.IsFalse(HubModelId.TryParse(null, out _));
    }
}
