using Cnn.Backbones.Clip;
using Cnn.Backbones.Models;
using Cnn.Backbones.Weights;
using Cnn.MLNet.Persistence;
using Cnn.MLNet.Tests.Training;
using Cnn.MLNet.Training;
using Cnn.Tests.Shared;
using Microsoft.ML;
using static TorchSharp.torch;

namespace Cnn.MLNet.Tests.Clip;

/// <summary>
/// The CLIP image tower as a <see cref="CnnTrainer"/> backbone: an OpenCLIP checkpoint saved by OpenCLIP itself (random weights, made
/// at test time) loads its image tower into <c>clip_vit_b32</c> at 64 px (the position embedding resampled as OpenCLIP's
/// <c>load_checkpoint</c> does) and gives OpenCLIP's <c>encode_image</c>; the tower fine-tunes and linear-probes on a few generated
/// images, and the trained pipeline saves and reloads.
/// </summary>
[TestClass]
public sealed class ClipBackboneTrainingTests
{
    private sealed class Row
    {
        public string ImagePath { get; set; } = "";

        public string Label { get; set; } = "";
    }

    // OpenCLIP saves a ViT-B-32 at 224 px, loads it into a 64 px model with its own load_checkpoint (resize_pos_embed), and writes
    // that model's encode_image of a random batch; then 16 PNGs of two colour classes (noisy reddish or bluish images).
    private const string Script = """
        folder = sys.argv[1]
        from PIL import Image
        import numpy as np
        torch.manual_seed(0)
        full = open_clip.create_model('ViT-B-32', pretrained=None)
        path = folder + '/open_clip_pytorch_model.bin'
        torch.save(full.state_dict(), path)
        small = open_clip.create_model('ViT-B-32', pretrained=None, force_image_size=64)
        open_clip.load_checkpoint(small, path)
        small.eval()
        x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(3))
        with torch.no_grad():
            embedding = small.encode_image(x)
        torch.save({'input': x, 'embedding': embedding}, folder + '/io.pt')
        rng = np.random.default_rng(7)
        rows = []
        for i in range(16):
            label = 'red' if i % 2 == 0 else 'blue'
            base = np.array([200, 40, 40] if label == 'red' else [40, 40, 200], dtype=np.int16)
            pixels = np.clip(base + rng.integers(-40, 41, (72, 80, 3)), 0, 255).astype(np.uint8)
            p = f'{folder}/img{i}.png'
            Image.fromarray(pixels).save(p)
            rows.append([p, label])
        print(json.dumps(rows))
        """;

    [TestMethod]
    public void TheImageTowerLoadsAnOpenClipCheckpointEqualsEncodeImageAndTrainsThroughCnnTrainer()
    {
        using var folder = new TempDirectory();
        var rows = System.Text.Json.JsonSerializer.Deserialize<string[][]>(OpenClipReference.Run(Script, folder.Path))!
            .Select(r => new Row { ImagePath = r[0], Label = r[1] }).ToArray();
        string checkpoint = folder.File("open_clip_pytorch_model.bin");

        // The loaded tower is OpenCLIP's encode_image (the 224 px position embedding resampled to 64 px as OpenCLIP does).
        using (var io = WeightFile.Load(folder.File("io.pt")))
        using (var tower = ModelRegistry.Create("clip_vit_b32", new ModelOptions { ImageSize = 64, NumClasses = 0, WeightsPath = checkpoint }))
        using (no_grad())
        {
            tower.eval();
            using var embedding = tower.forward(io["input"]);
            double difference = (embedding - io["embedding"]).abs().max().item<float>() / io["embedding"].abs().max().item<float>();
            Assert.IsLessThan(1e-4, difference, $"encode_image: max relative difference {difference}");
        }

        // Another tower is refused, naming what the file holds.
        var wrong = Assert.ThrowsExactly<ClipWeightsException>(() => ModelRegistry.Create("clip_rn50", new ModelOptions { WeightsPath = checkpoint }));
        StringAssert.Contains(wrong.Message, "ViT-B-32");
        StringAssert.Contains(wrong.Message, "clip_rn50");
        StringAssert.Contains(wrong.Message, "Load it into clip_vit_b32.");
        var size = Assert.ThrowsExactly<ClipWeightsException>(() => ModelRegistry.Create("clip_vit_b16", new ModelOptions { WeightsPath = checkpoint }));
        StringAssert.Contains(size.Message, "ViT-B-32");

        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(rows);
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);

        // Fine-tuning: every weight trains, the loss falls.
        var epochs = new List<EpochMetrics>();
        var fineTune = Options(checkpoint, epochs.Add);
        using (var tuned = CnnTrainer.ClipVitB32(fineTune, ml).Fit(keyed))
        {
            Assert.HasCount(fineTune.Epochs, epochs);
            Assert.IsTrue(epochs[^1].TrainLoss < epochs[0].TrainLoss, $"loss should fall: {string.Join(" -> ", epochs.Select(e => e.TrainLoss))}");
            var scores = CnnTrainerTests.ScoresOf(ml, tuned.Transform(keyed));
            Assert.HasCount(rows.Length, scores);
            foreach (var row in scores) Assert.AreEqual(1.0, row.Sum(), 1e-4, "probabilities sum to 1");
        }

        // Linear probe: the tower is frozen and keeps OpenCLIP's weights; only the head trains. The pipeline saves and reloads.
        var probe = Options(checkpoint, null);
        probe.Freeze = FreezeMode.Backbone;
        var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(CnnTrainer.ClipVitB32(probe, ml)).Fit(data);
        var network = ((Cnn.MLNet.Scoring.CnnClassifierTransformer)model.LastTransformer).Network.Model;
        using (var original = WeightFile.Load(checkpoint))
        {
            var trained = network.state_dict();
            Assert.IsTrue(trained["visual.transformer.resblocks.0.attn.in_proj_weight"].cpu().eq(original["visual.transformer.resblocks.0.attn.in_proj_weight"]).all().item<bool>(),
                "the frozen tower keeps the checkpoint's weights");
            Assert.AreEqual(2L, trained["head.weight"].shape[0]);
        }
        var before = CnnTrainerTests.ScoresOf(ml, model.Transform(data));
        string file = folder.File("probe.zip");
        CnnPipelineFile.Save(ml, model, data.Schema, file);
        var loaded = CnnPipelineFile.Load(new MLContext(), file, out _);
        try
        {
            var after = CnnTrainerTests.ScoresOf(ml, loaded.Transform(data));
            for (int i = 0; i < before.Count; i++)
                CollectionAssert.AreEqual(before[i], after[i], $"row {i}: the reloaded model gives the same scores");
        }
        finally
        {
            foreach (var stage in CnnPipelineFile.Stages(loaded)) (stage as IDisposable)?.Dispose();
            foreach (var stage in model) (stage as IDisposable)?.Dispose();
        }
    }

    private static CnnTrainerOptions Options(string checkpoint, Action<EpochMetrics>? epochCompleted) => new()
    {
        Model = new ModelOptions { ImageSize = 64, WeightsPath = checkpoint },
        ImageColumnName = "ImagePath",
        Epochs = 4,
        BatchSize = 8,
        LearningRate = 1e-4,
        Augment = false,
        Seed = 1,
        Device = CnnDevice.Cpu,
        Precision = CnnPrecision.Float32,
        MemoryFormat = CnnMemoryFormat.Contiguous,
        InferenceEngine = CnnInferenceEngine.TorchSharp,
        EpochCompleted = epochCompleted,
    };
}
