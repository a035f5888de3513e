using Cnn.Tests.Shared;
using Cnn.Backbones.Weights.Download;

namespace Cnn.Backbones.Tests.Download;

[TestClass]
public sealed class WeightStoreOptionsTests
{
    private static WeightStoreOptions From(params (string Name, string Value)[] variables)
    {
        var environment = variables.ToDictionary(v => v.Name, v => v.Value);
        return WeightStoreOptions.FromEnvironment(name => environment.GetValueOrDefault(name));
    }

    [TestMethod]
    public void Defaults_AreTorchsAndTheHubsCaches_UnderHome()
    {
        var options = From(("HOME", "/home/u"));

        Assert.AreEqual(Path.Combine("/home/u", ".cache", "torch", "hub", "checkpoints"), options.TorchCheckpointsDirectory);
        Assert.AreEqual(Path.Combine("/home/u", ".cache", "huggingface", "hub"), options.HubCacheDirectory);
        Assert.AreEqual(Path.Combine("/home/u", ".cache", "cnn", "verified"), options.VerifiedMemoDirectory);
        Assert.IsFalse(options.Offline);
        Assert.AreEqual(WeightStoreOptions.DefaultHubEndpoint, options.HubEndpoint);
        Assert.IsNull(options.TorchvisionMirror);
        Assert.IsFalse(options.AllowInsecureHttp);
        Assert.IsInstanceOfType<ConsoleDownloadProgress>(options.Progress);
    }

    [TestMethod]
    public void XdgCacheHome_TorchHome_HfHome_AndHfHubCache_AreHonoured()
    {
        var xdg = From(("HOME", "/home/u"), ("XDG_CACHE_HOME", "/xdg"));
        Assert.AreEqual(Path.Combine("/xdg", "torch", "hub", "checkpoints"), xdg.TorchCheckpointsDirectory);
        Assert.AreEqual(Path.Combine("/xdg", "huggingface", "hub"), xdg.HubCacheDirectory);

        var set = From(("HOME", "/home/u"), ("TORCH_HOME", "~/torch"), ("HF_HOME", "/hf"));
        Assert.AreEqual(Path.Combine("/home/u", "torch", "hub", "checkpoints"), set.TorchCheckpointsDirectory, "~ expands as torch.hub does");
        Assert.AreEqual(Path.Combine("/hf", "hub"), set.HubCacheDirectory);

        var hubCache = From(("HOME", "/home/u"), ("HF_HOME", "/hf"), ("HF_HUB_CACHE", "/hubcache"));
        Assert.AreEqual("/hubcache", hubCache.HubCacheDirectory, "HF_HUB_CACHE wins over HF_HOME");
    }

    [TestMethod]
    public void CnnHome_OverridesBothCaches_AsDoesUseCacheRoot()
    {
        var options = From(("HOME", "/home/u"), ("CNN_HOME", "/cnn"), ("TORCH_HOME", "/torch"), ("HF_HUB_CACHE", "/hubcache"));
        Assert.AreEqual(Path.Combine("/cnn", "checkpoints"), options.TorchCheckpointsDirectory);
        Assert.AreEqual(Path.Combine("/cnn", "hub"), options.HubCacheDirectory);
        Assert.AreEqual(Path.Combine("/cnn", "verified"), options.VerifiedMemoDirectory);

        options.UseCacheRoot("/elsewhere");
        Assert.AreEqual(Path.Combine("/elsewhere", "checkpoints"), options.TorchCheckpointsDirectory);
        Assert.AreEqual(Path.Combine("/elsewhere", "hub"), options.HubCacheDirectory);
    }

    [TestMethod]
    [DataRow("CNN_OFFLINE", "1", true)]
    [DataRow("CNN_OFFLINE", "TRUE", true)]
    [DataRow("HF_HUB_OFFLINE", "on", true)]
    [DataRow("HF_HUB_OFFLINE", "yes", true)]
    [DataRow("CNN_OFFLINE", "0", false)]
    [DataRow("HF_HUB_OFFLINE", "false", false)]
    public void OfflineVariables_ReadAsHuggingfaceHubReadsThem(string name, string value, bool offline) =>
        Assert.AreEqual(offline, From(("HOME", "/home/u"), (name, value)).Offline);

    [TestMethod]
    public void Endpoints_FromTheEnvironment_AndBadOnesNamed()
    {
        var options = From(("HOME", "/home/u"), ("HF_ENDPOINT", "https://hf-mirror.example"), ("CNN_WEIGHTS_MIRROR", "https://mirror.example/torch/"));
        Assert.AreEqual(new Uri("https://hf-mirror.example"), options.HubEndpoint);
        Assert.AreEqual(new Uri("https://mirror.example/torch/"), options.TorchvisionMirror);

        var error = Assert.ThrowsExactly<ArgumentException>(() => From(("HOME", "/home/u"), ("CNN_WEIGHTS_MIRROR", "mirror.example/torch")));
        StringAssert.Contains(error.Message, "CNN_WEIGHTS_MIRROR='mirror.example/torch'");
        error = Assert.ThrowsExactly<ArgumentException>(() => From(("HOME", "/home/u"), ("HF_ENDPOINT", "ftp://hub.example")));
        StringAssert.Contains(error.Message, "HF_ENDPOINT");
    }

    [TestMethod]
    public void InvalidOptions_AreRefusedByTheStore()
    {
        var options = From(("HOME", "/home/u"));
        options.MaxRetries = -1;
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new WeightStore(options)).Message, "MaxRetries");
        options.MaxRetries = 0;
        options.StallTimeout = TimeSpan.Zero;
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new WeightStore(options)).Message, "StallTimeout");
    }

    [TestMethod]
    public void CachePathOf_IsTheUrlsFileName_InTheCheckpointsFolder()
    {
        var options = From(("HOME", "/home/u"), ("CNN_HOME", "/cnn"));
        using var store = new WeightStore(options);
        Assert.AreEqual(Path.Combine("/cnn", "checkpoints", "resnet50-11ad3fa6.pth"),
            store.CachePathOf(new Uri(WeightStoreOptions.TorchvisionBaseUrl, "resnet50-11ad3fa6.pth")));
        Assert.AreEqual(Path.Combine("/cnn", "checkpoints", "a b-12345678.pth"), store.CachePathOf(new Uri("https://x.example/m/a%20b-12345678.pth")));
        var error = Assert.ThrowsExactly<WeightDownloadException>(() => store.CachePathOf(new Uri("https://x.example/models/")));
        StringAssert.Contains(error.Message, "https://x.example/models/");
        using var hubStore = new WeightStore(From(("HOME", "/h"), ("HF_ENDPOINT", "https://hf.example/")));
        Assert.AreEqual(new Uri("https://hf.example/timm/resnet50.a1_in1k/resolve/refs%2Fpr%2F1/model.safetensors"),
            hubStore.HubFileUrl(HubModelId.Parse("hf-hub:timm/resnet50.a1_in1k@refs/pr/1"), "model.safetensors"));
    }
}
