using Cnn.Backbones.Models;
using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using Cnn.MLNet.Training;
using Cnn.MLNet.Training.Bottlenecks;
using Cnn.Tests.Shared;
using Microsoft.ML;
using static TorchSharp.torch;

namespace Cnn.MLNet.Tests.Training;

/// <summary>
/// The bottleneck cache: with the backbone frozen and no augmentation, the head trained on cached outputs is the head trained by
/// running the backbone every epoch (same seed, same weights within float tolerance), at both cache levels; the cache folder is
/// reused only for unchanged images; and the cases that cannot be cached say why.
/// </summary>
[TestClass]
[DoNotParallelize] // compares same-seed runs: no other test may draw from TorchSharp's global generator meanwhile
public sealed class BottleneckCacheTests
{
    private static CnnTrainerOptions FrozenOptions(string architecture) => new()
    {
        Architecture = architecture,
        Model = new ModelOptions { InChannels = 1, ImageSize = 32 },
        Precision = CnnPrecision.Float32, MemoryFormat = CnnMemoryFormat.Contiguous, InferenceEngine = CnnInferenceEngine.TorchSharp,
        Freeze = FreezeMode.Backbone,
        Augment = false,
        Epochs = 3,
        BatchSize = 8,
        LearningRate = 3e-3,
        ValidationFraction = 0.25,
        Seed = 2,
    };

    private static (Dictionary<string, Tensor> Weights, List<EpochMetrics> Epochs, List<string> Log) Fit(CnnTrainerOptions options, IDataView? data = null)
    {
        var ml = new MLContext(seed: 1);
        var log = new List<string>();
        ml.Log += (_, e) => { if (e.Source == "CnnTrainer") lock (log) log.Add(e.Message); };
        var epochs = new List<EpochMetrics>();
        options.EpochCompleted = epochs.Add;
        data ??= FashionMnistFixture.View(ml, train: true, perClass: 8, classes: 4);
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
        using var model = CnnTrainer.Create(options.Architecture, options, ml).Fit(keyed);
        var weights = model.Network.Model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().to(ScalarType.Float32).clone());
        return (weights, epochs, log);
    }

    /// <remarks>The third row computes the cache in ONNX Runtime (the frozen network's own export) and trains in TorchSharp.</remarks>
    [TestMethod]
    [DataRow("resnet18", "PreLogits", CnnInferenceEngine.TorchSharp)]
    [DataRow("mobilenet_v3_small", "Features", CnnInferenceEngine.TorchSharp)]
    [DataRow("resnet18", "PreLogits", CnnInferenceEngine.OnnxRuntime)]
    public void CachedHeadTrainingGivesTheSameModel(string architecture, string level, CnnInferenceEngine engine)
    {
        var cachedOptions = FrozenOptions(architecture);
        cachedOptions.InferenceEngine = engine;
        var cached = Fit(cachedOptions);
        var options = FrozenOptions(architecture);
        options.CacheBottlenecks = false;
        var direct = Fit(options);

        Assert.IsTrue(cached.Log.Any(m => m.Contains($"Bottleneck cache ({level}) of 24 training images: 24 computed", StringComparison.Ordinal)), string.Join("\n", cached.Log));
        Assert.IsFalse(direct.Log.Any(m => m.Contains("Bottleneck cache (", StringComparison.Ordinal)));
        foreach (var (name, value) in direct.Weights)
        {
            double difference = (cached.Weights[name] - value).abs().max().item<float>();
            Assert.IsLessThan(2e-5, difference, $"{name} differs by {difference}");
        }
        for (int e = 0; e < 3; e++)
        {
            Assert.AreEqual(direct.Epochs[e].TrainLoss, cached.Epochs[e].TrainLoss, 1e-4, $"epoch {e + 1} loss");
            Assert.AreEqual(direct.Epochs[e].ValidationLoss!.Value, cached.Epochs[e].ValidationLoss!.Value, 1e-4, $"epoch {e + 1} validation loss");
        }
    }

    [TestMethod]
    public void TheCacheFolderIsReusedOnlyForUnchangedImages()
    {
        using var dir = new TempDirectory();
        var ml = new MLContext(seed: 1);
        var images = FashionMnistFixture.Slice(train: true, perClass: 6, classes: 3);
        var options = FrozenOptions("resnet18");
        options.ValidationFraction = 0;
        options.Epochs = 1;
        options.CacheDirectory = dir.File("cache");

        var first = Fit(options, ImageDataViews.ToDataView(ml, images));
        StringAssert.Contains(string.Join("\n", first.Log), "18 training images: 18 computed, 0 reused");
        options = FrozenOptions("resnet18");
        options.ValidationFraction = 0;
        options.Epochs = 1;
        options.CacheDirectory = dir.File("cache");
        var second = Fit(options, ImageDataViews.ToDataView(ml, images));
        StringAssert.Contains(string.Join("\n", second.Log), "18 training images: 0 computed, 18 reused");
        foreach (var (name, value) in first.Weights)
            Assert.AreEqual(0, (second.Weights[name] - value).abs().max().item<float>(), name);

        // One image changes (same name, same label, other pixels): only that one is recomputed.
        var samples = images.Samples.ToList();
        var decoded = samples[4].Decode(1);
        var inverted = decoded.Pixels.ToArray().Select(p => (byte)(255 - p)).ToArray();
        samples[4] = ImageSample.FromEncoded(ImageEncoder.EncodePng(inverted, decoded.Width, decoded.Height, 1), samples[4].Label, samples[4].Name);
        options = FrozenOptions("resnet18");
        options.ValidationFraction = 0;
        options.Epochs = 1;
        options.CacheDirectory = dir.File("cache");
        var third = Fit(options, ImageDataViews.ToDataView(ml, new ImageDataset(samples, images.ClassNames)));
        StringAssert.Contains(string.Join("\n", third.Log), "18 training images: 1 computed, 17 reused");

        // A damaged cache file is ignored and rebuilt, never trusted.
        var file = Directory.GetFiles(dir.File("cache"), "bottlenecks-*.bin").Single();
        File.WriteAllBytes(file, File.ReadAllBytes(file)[..100]);
        options = FrozenOptions("resnet18");
        options.ValidationFraction = 0;
        options.Epochs = 1;
        options.CacheDirectory = dir.File("cache");
        var fourth = Fit(options, ImageDataViews.ToDataView(ml, images));
        string log = string.Join("\n", fourth.Log);
        StringAssert.Contains(log, "ignored");
        StringAssert.Contains(log, "18 training images: 18 computed, 0 reused");
    }

    [TestMethod]
    public void UncacheableRunsSayWhy()
    {
        using var model = ModelRegistry.Create("efficientnet_b0", new ModelOptions { NumClasses = 3 });
        var options = FrozenOptions("efficientnet_b0");
        FreezePolicy.FreezeBackbone(model);
        Assert.IsNull(BottleneckPlan.For(options, model, out string? reason));
        StringAssert.Contains(reason, "stochastic depth");
        options.Augment = true;
        Assert.IsNull(BottleneckPlan.For(options, model, out reason));
        StringAssert.Contains(reason, "augmentation");
        options.Augment = false;
        options.MixupAlpha = 0.2;
        using var resnet = ModelRegistry.Create("resnet18", new ModelOptions { NumClasses = 3 });
        FreezePolicy.FreezeBackbone(resnet);
        Assert.IsNull(BottleneckPlan.For(options, resnet, out reason));
        StringAssert.Contains(reason, "mixup");
        options.MixupAlpha = 0;
        Assert.AreEqual(BottleneckLevel.PreLogits, BottleneckPlan.For(options, resnet, out reason));
        options.Freeze = FreezeMode.None;
        Assert.IsNull(BottleneckPlan.For(options, resnet, out reason));
        Assert.IsNull(reason, "nothing to say when the backbone trains");
    }
}
