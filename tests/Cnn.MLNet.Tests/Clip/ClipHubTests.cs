using System.Text.Json;
using Cnn.Backbones.Clip;
using Cnn.Backbones.Weights.Download;
using Cnn.Backbones.Weights;
using Cnn.MLNet.Clip;
using Cnn.MLNet.Persistence;
using Cnn.MLNet.Tests.Cli;
using Cnn.MLNet;
using Cnn.Tests.Shared;
using Microsoft.ML.Data;
using Microsoft.ML;
using static TorchSharp.torch;

namespace Cnn.MLNet.Tests.Clip;

/// <summary>
/// A CLIP model given by its hub name alone, as OpenCLIP's <c>create_model('hf-hub:…')</c>: a loopback hub serves an
/// <c>open_clip_config.json</c> (a configuration no <see cref="ClipModels"/> entry has, with its own preprocessing) and a
/// checkpoint OpenCLIP saved at test time; OpenCLIP loads the same two files (its <c>local-dir:</c> schema reads them as
/// <c>hf-hub:</c> does) and its preprocessing and encoders are the oracle.
/// </summary>
[TestClass]
public sealed class ClipHubTests
{
    private const string Repository = "test/tiny-clip";
    private const string HubName = "hf-hub:" + Repository;

    private sealed class Row
    {
        public string ImagePath { get; set; } = "";
    }

    private sealed class TextRow
    {
        public string Text { get; set; } = "";
    }

    private const string Script = """
        folder = sys.argv[1]
        from PIL import Image
        import numpy as np
        model_cfg = {'embed_dim': 48, 'quick_gelu': True,
                     'vision_cfg': {'image_size': 64, 'layers': 2, 'width': 128, 'head_width': 32, 'mlp_ratio': 2.0, 'patch_size': 16},
                     'text_cfg': {'context_length': 77, 'vocab_size': 49408, 'width': 64, 'heads': 2, 'layers': 2}}
        preprocess_cfg = {'mean': [0.5, 0.4, 0.3], 'std': [0.2, 0.25, 0.3], 'interpolation': 'bilinear', 'resize_mode': 'shortest'}
        hub = folder + '/hub'
        os.makedirs(hub)
        with open(hub + '/open_clip_config.json', 'w') as f:
            json.dump({'model_cfg': model_cfg, 'preprocess_cfg': preprocess_cfg}, f, indent=2)
        torch.manual_seed(3)
        random_model = open_clip.create_model('local-dir:' + hub)
        with torch.no_grad():
            random_model.logit_scale.fill_(3.5)
        torch.save(random_model.state_dict(), hub + '/open_clip_pytorch_model.bin')
        model, _, preprocess = open_clip.create_model_and_transforms('local-dir:' + hub)
        model.eval()
        rng = np.random.default_rng(11)
        paths = []
        for i, (w, h) in enumerate([(150, 100), (90, 130), (64, 64)]):
            p = f'{folder}/img{i}.png'
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(p)
            paths.append(p)
        x = torch.stack([preprocess(Image.open(p)) for p in paths])
        tok = open_clip.get_tokenizer('local-dir:' + hub)
        with torch.no_grad():
            fi = model.encode_image(x, normalize=True)
            ft = model.encode_text(tok(['a photo of a cat']), normalize=True)
        torch.save({'image_embeddings': fi, 'text_embeddings': ft}, folder + '/io.pt')
        print(json.dumps(paths))
        """;

    [TestMethod]
    public void AHubNameAloneBuildsTheModelItsConfigDescribes_EqualToOpenClip()
    {
        using var folder = new TempDirectory();
        var paths = JsonSerializer.Deserialize<string[]>(OpenClipReference.Run(Script, folder.Path).Trim().Split('\n')[^1])!;
        using var io = WeightFile.Load(folder.File("io.pt"));
        using var hub = new FakeHub(Repository, new Dictionary<string, byte[]>
        {
            ["open_clip_config.json"] = File.ReadAllBytes(Path.Combine(folder.Path, "hub", "open_clip_config.json")),
            ["open_clip_pytorch_model.bin"] = File.ReadAllBytes(Path.Combine(folder.Path, "hub", "open_clip_pytorch_model.bin")),
        });
        var options = hub.StoreOptions(folder.File("cache"));
        WeightStore.OptionsForTests.Value = options;
        try
        {
            // The configuration is no registered model: it is built from the file, named after the hub.
            var source = ClipModelSource.Resolve(HubName, null);
            Assert.AreEqual(HubName, source.Config.Model.Name);
            Assert.AreEqual(32, source.Config.Model.Vision.HeadWidth);
            Assert.IsTrue(source.Config.Preprocess.Bilinear);

            // ML.NET: the model name alone; OpenCLIP's preprocessing (bilinear, its mean and std) and encode_image.
            var ml = new MLContext(seed: 0);
            var data = ml.Data.LoadFromEnumerable(paths.Select(p => new Row { ImagePath = p }));
            using var model = ml.Transforms.ExtractClipImageEmbeddings(new ClipEmbeddingOptions { ModelName = HubName, InputColumnName = "ImagePath" }).Fit(data);
            var embeddings = model.Transform(data).GetColumn<float[]>("Embedding").ToArray();
            AssertClose(io["image_embeddings"], embeddings, "image embeddings", 1e-3);

            // Saved and reloaded without the hub: the configuration travels in the pipeline file.
            string file = folder.File("clip.zip");
            CnnPipelineFile.Save(ml, model, data.Schema, file);
            WeightStore.OptionsForTests.Value = new WeightStoreOptions { Offline = true }.UseCacheRoot(folder.File("empty-cache"));
            var reloaded = CnnPipelineFile.Load(ml, file, out _);
            try
            {
                CollectionAssert.AreEqual(embeddings.SelectMany(e => e).ToArray(), reloaded.Transform(data).GetColumn<float[]>("Embedding").SelectMany(e => e).ToArray(), "reloaded");
            }
            finally
            {
                foreach (var stage in CnnPipelineFile.Stages(reloaded)) (stage as IDisposable)?.Dispose();
            }
            WeightStore.OptionsForTests.Value = options;

            // The CLI: --model with the hub name alone.
            var line = CliHost.Succeed("embed", "--model", HubName, "--text", "a photo of a cat", "--json");
            using var embedded = JsonDocument.Parse(line.Trim());
            var text = embedded.RootElement.GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray();
            AssertClose(io["text_embeddings"], [text], "text embedding", 1e-4);

            // A named model with hub weights whose configuration disagrees is refused, naming both.
            var disagree = Assert.ThrowsExactly<ClipConfigException>(() => ClipModelSource.Resolve("ViT-B-32", HubName));
            StringAssert.Contains(disagree.Message, "ViT-B-32");
            StringAssert.Contains(disagree.Message, HubName);
            string cli = CliHost.FailOneLine(1, "embed", "--model", "ViT-B-32", "--weights", HubName, "--text", "a cat");
            StringAssert.Contains(cli, "ViT-B-32");
            StringAssert.Contains(cli, HubName);
            StringAssert.Contains(cli, "open_clip_config.json");
        }
        finally
        {
            WeightStore.OptionsForTests.Value = null;
        }
    }

    [TestMethod]
    public void AHubConfigThisLibraryCannotBuildIsRefusedNamingTheFile()
    {
        using var folder = new TempDirectory();
        using var hub = new FakeHub("test/timm-clip", new Dictionary<string, byte[]>
        {
            ["open_clip_config.json"] = System.Text.Encoding.UTF8.GetBytes("""
                {"model_cfg": {"embed_dim": 512, "vision_cfg": {"timm_model_name": "convnext_base", "image_size": 224},
                  "text_cfg": {"width": 512, "heads": 8, "layers": 12}}}
                """),
            ["open_clip_pytorch_model.bin"] = [1, 2, 3],
        });
        using var store = hub.UseForTests(folder.Path);
        string error = CliHost.FailOneLine(1, "embed", "--model", "hf-hub:test/timm-clip", "--text", "a cat");
        StringAssert.Contains(error, "open_clip_config.json");
        StringAssert.Contains(error, "timm image tower");
    }

    private static void AssertClose(Tensor expected, float[][] actual, string what, double relative)
    {
        using var scope = NewDisposeScope();
        var ours = tensor(actual.SelectMany(a => a).ToArray(), [actual.Length, actual[0].Length]);
        CollectionAssert.AreEqual(expected.shape, ours.shape, what);
        double scale = expected.abs().max().item<float>();
        double diff = (ours - expected).abs().max().item<float>();
        Assert.IsTrue(diff <= relative * scale, $"{what}: max|diff| {diff:G4} > {relative:G2} · {scale:G4}");
    }
}
