using System.Globalization;
using System.Security.Cryptography;
using Cnn.Backbones.Models;
using Cnn.Backbones.Weights;
using Cnn.Backbones.Weights.Catalog;
using Cnn.Backbones.Weights.Download;
using Cnn.Tests.Shared;

namespace Cnn.Backbones.Tests.Weights;

/// <summary>
/// Weights asked for by name (<see cref="ModelOptions.Weights"/>, <see cref="PretrainedWeights.Resolve"/>): a catalog entry a user
/// registered and an <c>hf-hub:</c> name, each downloaded from a server on 127.0.0.1, hash-checked, cached, then loaded into the
/// model bit for bit; and the refusals (bad bytes, a name or path that does not exist, a hub checkpoint of another architecture).
/// </summary>
[TestClass]
public sealed class PretrainedWeightsTests
{
    /// <summary>A model's weights as a safetensors file whose name carries its SHA-256 prefix, torch.hub's convention.</summary>
    private static (byte[] Bytes, string FileName, Dictionary<string, float[]> Values) WeightsFile(string model, int seed, ModelOptions? options = null)
    {
        TorchSharp.torch.manual_seed(seed);
        using var source = ModelRegistry.Create(model, options);
        using var dir = new TempDirectory();
        string path = dir.File("w.safetensors");
        source.SaveWeights(path);
        var bytes = File.ReadAllBytes(path);
        var values = source.state_dict().ToDictionary(e => e.Key, e => e.Value.to_type(TorchSharp.torch.ScalarType.Float32).data<float>().ToArray());
        string hash = Convert.ToHexStringLower(SHA256.HashData(bytes));
        return (bytes, $"{model}-{hash[..10]}.safetensors", values);
    }

    private static WeightsEntry Entry(string name, Uri url, string model, int cropSize, int resizeSize, string interpolation, IReadOnlyList<string> categories)
    {
        var config = ModelRegistry.Get(model).DefaultConfig with
        {
            InputSize = new InputSize(ModelRegistry.Get(model).DefaultConfig.InputSize.Channels, cropSize, cropSize),
            CropPct = (double)cropSize / resizeSize,
            Interpolation = interpolation,
            NumClasses = categories.Count,
            Tag = "test " + name,
        };
        return new WeightsEntry(name, url.ToString(), config, new WeightsMetadata(0, double.NaN, double.NaN, "", categories));
    }

    private static void AssertLoaded(Dictionary<string, float[]> expected, Backbone model)
    {
        foreach (var (key, tensor) in model.state_dict())
            CollectionAssert.AreEqual(expected[key], tensor.to_type(TorchSharp.torch.ScalarType.Float32).data<float>().ToArray(), key);
    }

    [TestMethod]
    public void ARegisteredEntryDownloadsOnceIsVerifiedAndLoadsThroughModelOptionsWeights()
    {
        var (bytes, fileName, values) = WeightsFile("lenet5", seed: 11);
        using var server = new LoopbackServer(request => request.Path == "/models/" + fileName ? ServerResponse.File(bytes, request) : ServerResponse.NotFound());
        string name = "TEST_V1_" + Guid.NewGuid().ToString("N")[..8].ToUpperInvariant();
        string[] classes = Enumerable.Range(0, 10).Select(i => "class" + i.ToString(CultureInfo.InvariantCulture)).ToArray();
        WeightsCatalog.Register("lenet5", Entry(name, server.Url("models/" + fileName), "lenet5", 32, 36, "bicubic", classes));
        using var dir = new TempDirectory();
        var options = new WeightStoreOptions().UseCacheRoot(dir.Path);
        options.Progress = null;
        WeightStore.OptionsForTests.Value = options;
        try
        {
            using (var model = ModelRegistry.Create("lenet5", new ModelOptions { NumClasses = 10, InChannels = 1, Weights = name }))
                AssertLoaded(values, model);
            string cached = Path.Combine(dir.Path, "checkpoints", fileName);
            CollectionAssert.AreEqual(bytes, File.ReadAllBytes(cached), "the cache holds the served bytes");
            Assert.AreEqual(1, server.Count("GET", fileName), "downloaded once");

            // The second time comes from the cache, with the entry's preprocessing and class names.
            var resolved = PretrainedWeights.Resolve("lenet5", name.ToLowerInvariant());
            Assert.AreEqual(cached, resolved.Path);
            Assert.AreEqual("bicubic", resolved.Config!.Interpolation);
            Assert.AreEqual(32.0 / 36, resolved.Config.CropPct, 1e-12);
            CollectionAssert.AreEqual(classes, resolved.Categories!.ToArray());
            using (var again = ModelRegistry.Create("lenet5", new ModelOptions { NumClasses = 10, InChannels = 1, Weights = "lenet5." + name }))
                AssertLoaded(values, again);
            Assert.AreEqual(1, server.Count("GET", fileName), "no second download");
        }
        finally
        {
            WeightStore.OptionsForTests.Value = null;
        }
    }

    [TestMethod]
    public void BytesThatDoNotMatchTheEntrysHashAreRefusedAndNothingIsCachedOrLoaded()
    {
        var (bytes, fileName, _) = WeightsFile("lenet5", seed: 12);
        var tampered = (byte[])bytes.Clone();
        tampered[^1] ^= 0x55;
        using var server = new LoopbackServer(request => ServerResponse.File(tampered, request));
        string name = "TAMPERED_" + Guid.NewGuid().ToString("N")[..8].ToUpperInvariant();
        WeightsCatalog.Register("lenet5", Entry(name, server.Url("models/" + fileName), "lenet5", 32, 32, "bilinear", []));
        using var dir = new TempDirectory();
        var options = new WeightStoreOptions().UseCacheRoot(dir.Path);
        options.Progress = null;
        options.MaxRetries = 0;
        using var store = new WeightStore(options);
        var error = Assert.ThrowsExactly<WeightDownloadException>(() => PretrainedWeights.Resolve("lenet5", name, store));
        Assert.AreEqual(WeightDownloadFailure.HashMismatch, error.Reason);
        StringAssert.Contains(error.Message, Convert.ToHexStringLower(SHA256.HashData(bytes))[..10]);
        StringAssert.Contains(error.Message, Convert.ToHexStringLower(SHA256.HashData(tampered))[..10]);
        Assert.IsFalse(File.Exists(Path.Combine(dir.Path, "checkpoints", fileName)), "nothing cached under the final name");
    }

    [TestMethod]
    public void AnHfHubNameDownloadsConfigAndWeightsAndThePreprocessingFollowsTimmsConfig()
    {
        var (bytes, _, values) = WeightsFile("resnet18", seed: 13, new ModelOptions { NumClasses = 3 });
        const string Config = """
            {"architecture": "resnet18", "num_classes": 3, "num_features": 512, "global_pool": "avg",
             "pretrained_cfg": {"tag": "test_in1k", "custom_load": false, "input_size": [3, 160, 160], "fixed_input_size": false,
               "interpolation": "bicubic", "crop_pct": 0.95, "crop_mode": "center", "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
               "num_classes": 3, "pool_size": [5, 5], "first_conv": "conv1", "classifier": "fc"},
             "label_names": ["cat", "dog", "car"]}
            """;
        using var hub = new FakeHub("timm/resnet18.test_in1k", new Dictionary<string, byte[]>
        {
            ["config.json"] = System.Text.Encoding.UTF8.GetBytes(Config),
            ["model.safetensors"] = bytes,
        });
        using var dir = new TempDirectory();
        var options = hub.StoreOptions(dir.Path);
        WeightStore.OptionsForTests.Value = options;
        try
        {
            var resolved = PretrainedWeights.Resolve("resnet18", "hf-hub:timm/resnet18.test_in1k");
            Assert.AreEqual("bicubic", resolved.Config!.Interpolation);
            Assert.AreEqual(0.95, resolved.Config.CropPct, 1e-12);
            Assert.AreEqual(160, resolved.Config.InputSize.Height);
            CollectionAssert.AreEqual(new[] { 0.5, 0.5, 0.5 }, resolved.Config.Mean.ToArray());
            CollectionAssert.AreEqual(new[] { "cat", "dog", "car" }, resolved.Categories!.ToArray());
            StringAssert.StartsWith(resolved.Path, Path.Combine(dir.Path, "hub", "models--timm--resnet18.test_in1k", "snapshots"));
            using var model = ModelRegistry.Create("resnet18", new ModelOptions { NumClasses = 3, Weights = "hf-hub:timm/resnet18.test_in1k" });
            AssertLoaded(values, model);

            // The same checkpoint asked for as another architecture is refused, naming both.
            var error = Assert.ThrowsExactly<ArgumentException>(() => PretrainedWeights.Resolve("resnet34", "hf-hub:timm/resnet18.test_in1k"));
            StringAssert.Contains(error.Message, "resnet18");
            StringAssert.Contains(error.Message, "resnet34");
        }
        finally
        {
            WeightStore.OptionsForTests.Value = null;
        }
    }

    [TestMethod]
    public void AMissingPathAnUnknownNameAndConflictingOptionsAreClearErrors()
    {
        var missing = Assert.ThrowsExactly<FileNotFoundException>(() => PretrainedWeights.Resolve("resnet50", "/nowhere/resnet50.pth"));
        StringAssert.Contains(missing.Message, "/nowhere/resnet50.pth");
        StringAssert.Contains(missing.Message, "IMAGENET1K_V2");
        var unknown = Assert.ThrowsExactly<ArgumentException>(() => PretrainedWeights.Resolve("resnet50", "IMAGENET9K"));
        StringAssert.Contains(unknown.Message, "IMAGENET9K");
        StringAssert.Contains(unknown.Message, "DEFAULT (= IMAGENET1K_V2)");
        var both = Assert.ThrowsExactly<ArgumentException>(() => ModelRegistry.Create("lenet5", new ModelOptions { NumClasses = 10, InChannels = 1, Weights = "DEFAULT", WeightsPath = "x.pth" }));
        StringAssert.Contains(both.Message, "not both");
        var taken = Assert.ThrowsExactly<ArgumentException>(() => WeightsCatalog.Register("resnet50", WeightsCatalog.Find("resnet50", "IMAGENET1K_V1")));
        StringAssert.Contains(taken.Message, "already has weights named 'IMAGENET1K_V1'");
    }

    [TestMethod]
    public void OfflineTheCatalogsDefaultNamesTheUrlThePathAndTheHash()
    {
        using var dir = new TempDirectory();
        var options = new WeightStoreOptions().UseCacheRoot(dir.Path);
        options.Offline = true;
        options.Progress = null;
        using var store = new WeightStore(options);
        var entry = WeightsCatalog.Find("resnet50", "DEFAULT");
        var error = Assert.ThrowsExactly<WeightDownloadException>(() => PretrainedWeights.Resolve("resnet50", "DEFAULT", store));
        Assert.AreEqual(WeightDownloadFailure.NotAvailableOffline, error.Reason);
        StringAssert.Contains(error.Message, entry.Url);
        StringAssert.Contains(error.Message, Path.Combine(dir.Path, "checkpoints", entry.FileName));
        StringAssert.Contains(error.Message, entry.Sha256Prefix);
    }

    [TestMethod]
    public void AnOpenClipHubNameDownloadsTheOpenClipCheckpointIntoTheHubCache()
    {
        var bytes = new byte[4096];
        new Random(7).NextBytes(bytes);
        using var hub = new FakeHub("laion/CLIP-test", new Dictionary<string, byte[]>
        {
            ["open_clip_config.json"] = System.Text.Encoding.UTF8.GetBytes("""{"model_cfg": {"embed_dim": 512}}"""),
            ["open_clip_pytorch_model.bin"] = bytes,
        });
        using var dir = new TempDirectory();
        var options = hub.StoreOptions(dir.Path);
        using var store = new WeightStore(options);
        string path = PretrainedWeights.ResolveOpenClip("hf-hub:laion/CLIP-test", store);
        StringAssert.StartsWith(path, Path.Combine(dir.Path, "hub", "models--laion--CLIP-test", "snapshots"));
        StringAssert.EndsWith(path, "open_clip_pytorch_model.bin");
        CollectionAssert.AreEqual(bytes, File.ReadAllBytes(path));
        var missing = Assert.ThrowsExactly<FileNotFoundException>(() => PretrainedWeights.ResolveOpenClip(dir.File("nope.bin")));
        StringAssert.Contains(missing.Message, "hf-hub:");
    }

    /// <summary>
    /// For a CLIP image tower (<c>clip_*</c>), an <c>hf-hub:</c> name fetches the repository's OpenCLIP checkpoint (as timm's CLIP
    /// repositories hold one beside timm's files), not timm's <c>model.safetensors</c>; the model's own CLIP preprocessing applies.
    /// </summary>
    [TestMethod]
    public void AClipImageTowerTakesTheHubRepositorysOpenClipCheckpoint()
    {
        var openClip = new byte[2048];
        new Random(3).NextBytes(openClip);
        using var hub = new FakeHub("timm/vit_base_patch32_clip_224.test", new Dictionary<string, byte[]>
        {
            ["config.json"] = System.Text.Encoding.UTF8.GetBytes("""{"architecture": "vit_base_patch32_clip_224"}"""),
            ["model.safetensors"] = new byte[64],
            ["open_clip_config.json"] = System.Text.Encoding.UTF8.GetBytes("""{"model_cfg": {"embed_dim": 512}}"""),
            ["open_clip_model.safetensors"] = openClip,
        });
        using var dir = new TempDirectory();
        var options = hub.StoreOptions(dir.Path);
        using var store = new WeightStore(options);
        var resolved = PretrainedWeights.Resolve("clip_vit_b32", "hf-hub:timm/vit_base_patch32_clip_224.test", store);
        StringAssert.EndsWith(resolved.Path, "open_clip_model.safetensors");
        CollectionAssert.AreEqual(openClip, File.ReadAllBytes(resolved.Path));
        Assert.IsNull(resolved.Config, "the model's own (CLIP) preprocessing applies");
        Assert.AreEqual("hf-hub:timm/vit_base_patch32_clip_224.test", resolved.Description);
    }
}
