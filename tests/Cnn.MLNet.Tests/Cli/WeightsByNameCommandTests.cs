using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Cnn.Backbones.Models;
using Cnn.Backbones.Weights;
using Cnn.Backbones.Weights.Catalog;
using Cnn.Backbones.Weights.Download;
using Cnn.Tests.Shared;

namespace Cnn.MLNet.Tests.Cli;

/// <summary>
/// <c>cnn weights list|download</c>, <c>--pretrained</c> and <c>--weights NAME</c> on the command line, against a registered entry
/// served from 127.0.0.1 (the real torchvision server is never contacted; the store's options point the cache at a temporary folder).
/// </summary>
[TestClass]
public sealed class WeightsByNameCommandTests
{
    private static TempDirectory? _dir;
    private static LoopbackServer? _server;
    private static string _name = "";
    private static string _bicubicName = "";
    private static string _fileName = "";
    private static byte[] _bytes = [];
    private static readonly string[] Classes = Enumerable.Range(0, 10).Select(i => "kind-" + i.ToString(CultureInfo.InvariantCulture)).ToArray();

    [ClassInitialize]
    public static void Publish(TestContext _)
    {
        _dir = new TempDirectory();
        TorchSharp.torch.manual_seed(5);
        using (var model = ModelRegistry.Create("lenet5"))
            model.SaveWeights(_dir.File("w.safetensors"));
        _bytes = File.ReadAllBytes(_dir.File("w.safetensors"));
        _fileName = $"lenet5-{Convert.ToHexStringLower(SHA256.HashData(_bytes))[..12]}.safetensors";
        _server = new LoopbackServer(request => request.Path == "/m/" + _fileName || request.Path == "/m2/" + _fileName ? ServerResponse.File(_bytes, request) : ServerResponse.NotFound());
        _name = "CLI_V1_" + Guid.NewGuid().ToString("N")[..8].ToUpperInvariant();
        var config = ModelRegistry.Get("lenet5").DefaultConfig with { Tag = "test " + _name };
        var metadata = new WeightsMetadata(ModelRegistry.Get("lenet5").ParameterCount, 91.5, 99.1, "https://example.com/recipe", Classes);
        WeightsCatalog.Register("lenet5", new WeightsEntry(_name, _server.Url("m/" + _fileName).ToString(), config, metadata));
        // The same file described with other preprocessing, for the spec test.
        _bicubicName = _name + "_BICUBIC";
        WeightsCatalog.Register("lenet5", new WeightsEntry(_bicubicName, _server.Url("m2/" + _fileName).ToString(),
            config with { Interpolation = "bicubic", CropPct = 0.8 }, metadata));
        var pixels = new byte[28 * 28];
        new Random(3).NextBytes(pixels);
        File.WriteAllBytes(_dir.File("digit.png"), global::Cnn.MLNet.Imaging.ImageEncoder.EncodePng(pixels, 28, 28, 1));
    }

    [ClassCleanup]
    public static void Cleanup()
    {
        _server?.Dispose();
        _dir?.Dispose();
    }

    /// <summary>Runs cnn with the weights store's cache in <paramref name="cache"/> (offline when asked).</summary>
    private static (int Exit, string Out, string Err) Cnn(string cache, bool offline, params string[] args)
    {
        var options = new WeightStoreOptions().UseCacheRoot(cache);
        options.Offline = offline;
        options.Progress = null;
        WeightStore.OptionsForTests.Value = options;
        try
        {
            return CliHost.Run(args);
        }
        finally
        {
            WeightStore.OptionsForTests.Value = null;
        }
    }

    [TestMethod]
    public void ListShowsTheCatalogWithDefaultAccuracyAndWhetherCached()
    {
        var table = CliHost.Succeed("weights", "list", "resnet50");
        StringAssert.Contains(table, "IMAGENET1K_V2 (DEFAULT)");
        StringAssert.Contains(table, "80.858");
        StringAssert.Contains(table, "resnet50.tv2_in1k");
        var json = JsonDocument.Parse(CliHost.Succeed("weights", "list", "vit_b_16", "--json")).RootElement;
        var entries = json.EnumerateArray().ToArray();
        Assert.AreEqual(ModelRegistry.GetDefinition("vit_b_16").Weights.Count, entries.Length);
        var swag = entries.Single(e => e.GetProperty("name").GetString() == "IMAGENET1K_SWAG_E2E_V1");
        Assert.AreEqual(384, swag.GetProperty("input_size").GetInt32());
        Assert.AreEqual(JsonValueKind.Number, swag.GetProperty("file_size_mb").ValueKind, "the published file size");
        Assert.AreEqual("bicubic", swag.GetProperty("interpolation").GetString());
        Assert.AreNotEqual(JsonValueKind.Null, swag.GetProperty("license").ValueKind, "SWAG's non-commercial licence is shown");
    }

    [TestMethod]
    public void DownloadFetchesOnceThenPredictPrintsTheWeightsClassNamesOfflineFromTheCache()
    {
        using var cache = new TempDirectory();
        var (exit, output, error) = Cnn(cache.Path, false, "weights", "download", "lenet5." + _name);
        Assert.AreEqual(0, exit, error);
        string cached = Path.Combine(cache.Path, "checkpoints", _fileName);
        StringAssert.Contains(output, cached);
        CollectionAssert.AreEqual(_bytes, File.ReadAllBytes(cached));
        var list = Cnn(cache.Path, false, "weights", "list", "lenet5", "--json");
        var row = JsonDocument.Parse(list.Out).RootElement.EnumerateArray().Single(e => e.GetProperty("name").GetString() == _name);
        Assert.IsTrue(row.GetProperty("cached").GetBoolean());

        // Offline, from the cache: the entry's class names, and the same logits as the file loaded by path.
        var byName = Cnn(cache.Path, true, "predict", "--model", "lenet5", "--weights", _name.ToLowerInvariant(), "--json", _dir!.File("digit.png"));
        Assert.AreEqual(0, byName.Exit, byName.Err);
        var line = CliHost.JsonLines(byName.Out).Single();
        StringAssert.StartsWith(line.GetProperty("top")[0].GetProperty("label").GetString(), "kind-");
        var byPath = CliHost.JsonLines(CliHost.Succeed("predict", "--model", "lenet5", "--weights", cached, "--json", _dir.File("digit.png"))).Single();
        CollectionAssert.AreEqual(CliHost.Floats(byPath.GetProperty("logits")), CliHost.Floats(line.GetProperty("logits")));
        Assert.AreEqual(1, _server!.Count("GET", "/m/" + _fileName), "downloaded once");
    }

    [TestMethod]
    public void OfflineWithoutTheFileAndBadNamesAreOneLineErrors()
    {
        using var cache = new TempDirectory();
        var (exit, _, error) = Cnn(cache.Path, true, "predict", "--model", "lenet5", "--weights", _name, _dir!.File("digit.png"));
        Assert.AreEqual(1, exit);
        StringAssert.Contains(error, _fileName);
        StringAssert.Contains(error, Path.Combine(cache.Path, "checkpoints", _fileName));
        Assert.AreEqual(1, error.Trim().Split('\n').Length, error);
        Assert.IsFalse(Directory.Exists(Path.Combine(cache.Path, "checkpoints")) && Directory.GetFiles(Path.Combine(cache.Path, "checkpoints")).Any(f => f.EndsWith(".safetensors", StringComparison.Ordinal)));

        string unknown = CliHost.FailOneLine(1, "predict", "--model", "resnet50", "--weights", "IMAGENET9K", _dir.File("digit.png"));
        StringAssert.Contains(unknown, "IMAGENET1K_V2");
        string both = CliHost.FailOneLine(2, "predict", "--model", "resnet50", "--weights", "DEFAULT", "--pretrained", _dir.File("digit.png"));
        StringAssert.Contains(both, "not both");
        string badModel = CliHost.FailOneLine(2, "weights", "download", "resnet5O");
        StringAssert.Contains(badModel, "resnet50");
        string badHub = CliHost.FailOneLine(2, "weights", "download", "hf-hub:");
        StringAssert.Contains(badHub, "hf-hub:");
    }

    [TestMethod]
    public void TheTrainersSpecFollowsTheNamedWeightsPreprocessingAndKeepsNoName()
    {
        using var cache = new TempDirectory();
        var options = new WeightStoreOptions().UseCacheRoot(cache.Path);
        options.Progress = null;
        WeightStore.OptionsForTests.Value = options;
        try
        {
            var trainer = new CnnTrainerOptions { Architecture = "lenet5", Model = new ModelOptions { InChannels = 1, Weights = _bicubicName } };
            var spec = trainer.ToNetworkSpec();
            Assert.AreEqual(global::Cnn.MLNet.Imaging.ResizeInterpolation.Bicubic, spec.Preprocess.Interpolation);
            Assert.AreEqual(0.8, spec.Preprocess.CropPct, 1e-12);
            Assert.IsNull(spec.Model.Weights, "the name is resolved once, into a file");
            Assert.AreEqual(Path.Combine(cache.Path, "checkpoints", _fileName), spec.Model.WeightsPath);
            trainer.CropPct = 1.0;
            var overridden = trainer.ToNetworkSpec();
            Assert.AreEqual(1.0, overridden.Preprocess.CropPct, 1e-12, "an explicit option wins over the weights' configuration");
        }
        finally
        {
            WeightStore.OptionsForTests.Value = null;
        }
    }
}
