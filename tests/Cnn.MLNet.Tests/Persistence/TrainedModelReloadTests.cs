using Cnn.Backbones.Compute;
using Cnn.MLNet.Features;
using Cnn.MLNet.Networks;
using Cnn.MLNet.Persistence;
using Cnn.MLNet.Scoring;
using Cnn.MLNet.Tests.Training;
using Cnn.MLNet;
using Cnn.Tests.Shared;
using Microsoft.ML;
using static TorchSharp.torch;

namespace Cnn.MLNet.Tests.Persistence;

/// <summary>
/// A trained model scores the same in memory and after a save and load, whatever arithmetic it trained in: the transformer
/// <c>Fit</c> returns predicts in the inference settings (float32 contiguous by default), which the file stores and the loader
/// applies. Each precision and memory format Auto can pick is trained here; Auto itself is the bfloat16, channels-last branch on
/// a CPU whose oneDNN has native bfloat16, float32 elsewhere (<c>ONEDNN_MAX_CPU_ISA=AVX</c>).
/// </summary>
[TestClass]
public sealed class TrainedModelReloadTests
{
    private const int Size = 64; // Auto picks bfloat16 and channels-last from 64 px on

    // Small and quick, in the families Auto computes channels-last (in float32 too) and in bfloat16; its classifier starts near
    // zero (torchvision's init), so a briefly trained model's probabilities are not rounded to 0 and 1.
    private const string Architecture = "mobilenet_v3_small";

    private static CnnTrainerOptions Options(CnnPrecision precision, CnnMemoryFormat format) => new()
    {
        ImageColumnName = "Image",
        Model = new() { InChannels = 1, ImageSize = Size },
        CropPct = 1.0,
        Epochs = 2,
        BatchSize = 4,
        LearningRate = 1e-2,
        Augment = false,
        Seed = 11,
        Precision = precision,
        MemoryFormat = format,
        InferenceEngine = CnnInferenceEngine.TorchSharp,
    };

    [TestMethod]
    [DataRow(CnnPrecision.BFloat16, CnnMemoryFormat.ChannelsLast)]
    [DataRow(CnnPrecision.Float32, CnnMemoryFormat.Contiguous)]
    [DataRow(CnnPrecision.Float32, CnnMemoryFormat.ChannelsLast)]
    [DataRow(CnnPrecision.Auto, CnnMemoryFormat.Auto)]
    public void ATrainedModelScoresBitIdenticallyInMemoryAndAfterAReload(CnnPrecision precision, CnnMemoryFormat format)
    {
        var ml = new MLContext(seed: 11);
        var messages = new List<string>();
        ml.Log += (_, e) => { if (e.Source == "CnnTrainer") lock (messages) messages.Add(e.Message); };
        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(FashionMnistFixture.View(ml, train: true, perClass: 4, classes: 2));
        var train = keys.Transform(FashionMnistFixture.View(ml, train: true, perClass: 4, classes: 2));
        var test = keys.Transform(FashionMnistFixture.View(ml, train: false, perClass: 4, classes: 2));
        var trained = ComputeSelection.Resolve(precision, format, CPU, Architecture, Size).Settings;
        Console.WriteLine($"trained in {trained}");

        using var model = CnnTrainer.Create(Architecture, Options(precision, format), ml).Fit(train);
        Assert.IsTrue(messages.Any(m => m.Contains($"computing in {trained} (", StringComparison.Ordinal)),
            $"trained in {trained}: {string.Join(" | ", messages)}");
        Assert.AreEqual(ComputeSettings.Float32, model.Network.Model.Compute, "the trained model predicts in float32, contiguous, whatever it trained in");

        using var folder = new TempDirectory();
        CnnPipelineFile.Save(ml, model, train.Schema, folder.File("model.zip"));
        var loaded = CnnPipelineFile.Load(new MLContext(), folder.File("model.zip"), out _);
        using var reloaded = CnnPipelineFile.Stages(loaded).OfType<CnnClassifierTransformer>().Single();
        Assert.AreEqual(ComputeSettings.Float32, reloaded.Network.Model.Compute);
        AssertSameScores(ml, model, reloaded, test);
        AssertSameScores(ml, model, reloaded, train);
    }

    [TestMethod]
    public void AnInferencePrecisionSetExplicitlyIsStoredAndHonouredAfterAReload()
    {
        var ml = new MLContext(seed: 12);
        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(FashionMnistFixture.View(ml, train: true, perClass: 4, classes: 2));
        var train = keys.Transform(FashionMnistFixture.View(ml, train: true, perClass: 4, classes: 2));
        var options = Options(CnnPrecision.Float32, CnnMemoryFormat.Contiguous);
        options.InferencePrecision = CnnPrecision.BFloat16;
        options.InferenceMemoryFormat = CnnMemoryFormat.ChannelsLast;
        var inference = new ComputeSettings(ScalarType.BFloat16, ChannelsLast: true);

        using var model = CnnTrainer.Create(Architecture, options, ml).Fit(train);
        Assert.AreEqual(inference, model.Network.Model.Compute, "the fitted model predicts as asked");
        using var folder = new TempDirectory();
        CnnPipelineFile.Save(ml, model, train.Schema, folder.File("model.zip"));
        var loaded = CnnPipelineFile.Load(new MLContext(), folder.File("model.zip"), out _);
        using var reloaded = CnnPipelineFile.Stages(loaded).OfType<CnnClassifierTransformer>().Single();
        Assert.AreEqual(inference, reloaded.Network.Model.Compute, "the file's inference settings are used after the reload");
        AssertSameScores(ml, model, reloaded, train);

        // The setting is what made the difference: the same weights in float32 score otherwise.
        var reduced = CnnTrainerTests.ScoresOf(ml, reloaded.Transform(train));
        reloaded.Network.UseCompute(CnnPrecision.Float32, CnnMemoryFormat.Contiguous);
        var float32 = CnnTrainerTests.ScoresOf(ml, reloaded.Transform(train));
        Assert.IsTrue(reduced.Zip(float32).Any(p => !p.First.SequenceEqual(p.Second)), "bfloat16 predictions differ from float32 ones");
    }

    [TestMethod]
    public void AFeatureExtractorsPrecisionIsStoredAndHonouredAfterAReload()
    {
        var ml = new MLContext(seed: 13);
        var data = FashionMnistFixture.View(ml, train: false, perClass: 2, classes: 2);
        using var extractor = ml.Transforms.ExtractCnnFeatures(new CnnFeatureOptions
        {
            Architecture = Architecture, Model = new() { InChannels = 1, ImageSize = Size }, CropPct = 1.0, Precision = CnnPrecision.BFloat16,
            MemoryFormat = CnnMemoryFormat.ChannelsLast,
        }).Fit(data);
        using var folder = new TempDirectory();
        CnnPipelineFile.Save(ml, extractor, data.Schema, folder.File("features.zip"));
        var loaded = CnnPipelineFile.Load(new MLContext(), folder.File("features.zip"), out _);
        using var reloaded = CnnPipelineFile.Stages(loaded).OfType<CnnFeatureTransformer>().Single();
        Assert.AreEqual(new ComputeSettings(ScalarType.BFloat16, ChannelsLast: true), reloaded.Network.Model.Compute);
        var before = ml.Data.CreateEnumerable<FeatureRow>(extractor.Transform(data), reuseRowObject: false).Select(r => r.Features).ToList();
        var after = ml.Data.CreateEnumerable<FeatureRow>(reloaded.Transform(data), reuseRowObject: false).Select(r => r.Features).ToList();
        Assert.AreEqual(before.Count, after.Count);
        for (int i = 0; i < before.Count; i++)
            CollectionAssert.AreEqual(before[i], after[i], $"row {i}");
    }

    private sealed class FeatureRow
    {
        public float[] Features { get; set; } = [];
    }

    private static void AssertSameScores(MLContext ml, ITransformer fitted, ITransformer reloaded, IDataView data)
    {
        var before = CnnTrainerTests.ScoresOf(ml, fitted.Transform(data));
        var after = CnnTrainerTests.ScoresOf(ml, reloaded.Transform(data));
        Assert.AreEqual(before.Count, after.Count);
        Assert.IsTrue(before.Count > 0);
        Assert.IsTrue(before.SelectMany(r => r).All(p => p is > 1e-4f and < 1 - 1e-4f),
            "probabilities rounded to 0 or 1 would hide arithmetic differences: " + string.Join(" | ", before.Select(r => string.Join(", ", r))));
        for (int i = 0; i < before.Count; i++)
            CollectionAssert.AreEqual(before[i], after[i], $"row {i}: the reloaded model must score bit-identically");
    }
}
