using Cnn.Backbones.Models;
using Cnn.MLNet.Data;
using Cnn.MLNet.Features;
using Cnn.MLNet.Networks;
using Cnn.MLNet.Persistence;
using Cnn.MLNet.Tests.Training;
using Cnn.Tests.Shared;
using Microsoft.ML;
using Microsoft.ML.Data;
using static TorchSharp.torch;

namespace Cnn.MLNet.Tests.Networks;

/// <summary>
/// <see cref="CnnInferenceEngine.Auto"/>: it resolves to either engine as the calibration measures (timed through the test
/// seam, so the outcome is fixed), logs the choice, gives TorchSharp's outputs within float32 rounding either way, stays
/// TorchSharp where ONNX Runtime cannot help, keeps a decision for the process, falls back when ONNX Runtime fails, and is
/// what the options default to and what model files keep.
/// </summary>
[TestClass]
public sealed class AutoEngineTests
{
    private const int Size = 32;

    private static CnnNetwork Network(int seed = 1)
    {
        var network = NetworkBuilder.Build(NetworkSpec.For("resnet18", new ModelOptions { ImageSize = Size, NumClasses = 10 }, cropPct: 1.0), CPU, seed);
        network.UseCompute(CnnPrecision.Float32, CnnMemoryFormat.Contiguous, CnnInferenceEngine.Auto);
        return network;
    }

    private static ImageSample[] Images(int count, int seed = 5)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(i =>
        {
            var pixels = new byte[40 * 36 * 3];
            random.NextBytes(pixels);
            return ImageSample.FromPixels(pixels, 40, 36, 3, 0, $"image {i}");
        }).ToArray();
    }

    /// <summary>A measurement that prefers <paramref name="faster"/>, runs each pass once (so both engines really run) and counts calls.</summary>
    private static AutoEngine.Measure Prefer(CnnInferenceEngine faster, List<CnnInferenceEngine> calls) => (engine, pass, images) =>
    {
        lock (calls) calls.Add(engine);
        pass();
        return engine == faster ? 200.0 : 100.0;
    };

    private static float[][] PinnedTorchSharp(CnnNetwork network, IReadOnlyList<ImageSample> images, int batchSize, bool preLogits = false)
    {
        var engine = network.Engine;
        network.UseEngine(CnnInferenceEngine.TorchSharp);
        try { return network.ForwardAll(images, batchSize, preLogits); }
        finally { network.UseEngine(engine); }
    }

    private static void AssertClose(float[][] expected, float[][] actual, double relative)
    {
        Assert.AreEqual(expected.Length, actual.Length);
        double scale = expected.SelectMany(r => r).Max(v => Math.Abs((double)v));
        Assert.IsTrue(scale > 0, "the reference is all zeros, which would prove nothing");
        for (int i = 0; i < expected.Length; i++)
            for (int j = 0; j < expected[i].Length; j++)
                Assert.IsTrue(Math.Abs(expected[i][j] - actual[i][j]) <= relative * scale, $"[{i}][{j}]: {expected[i][j]} against {actual[i][j]}");
    }

    [TestMethod]
    [DataRow(CnnInferenceEngine.OnnxRuntime)]
    [DataRow(CnnInferenceEngine.TorchSharp)]
    public void AutoKeepsTheFasterEngineLogsItAndGivesTorchSharpsOutputs(CnnInferenceEngine faster)
    {
        var calls = new List<CnnInferenceEngine>();
        using var seam = AutoEngine.UseForTests(Prefer(faster, calls));
        var ml = new MLContext(seed: 1);
        var log = new List<string>();
        ml.Log += (_, e) => { if (e.Source == "CnnInference" && e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Info) lock (log) log.Add(e.Message); };
        using var network = Network();
        network.Log = ml;
        var images = Images(12);

        var auto = network.ForwardAll(images, batchSize: 8);
        CollectionAssert.AreEqual(new[] { CnnInferenceEngine.TorchSharp, CnnInferenceEngine.OnnxRuntime }, calls, "both engines measured once, on the first batch");
        Assert.AreEqual(faster, network.AutoChoice);
        Assert.AreEqual(CnnInferenceEngine.Auto, network.Engine, "the network still asks for Auto (what a model file stores)");
        string name = faster == CnnInferenceEngine.OnnxRuntime ? "ONNX Runtime" : "TorchSharp";
        StringAssert.StartsWith(network.EngineDescription, $"auto: {name}, 200.0 img/s against");
        StringAssert.Contains(network.EngineDescription, "resnet18, 3×32×32, batch 8");
        Assert.AreEqual(1, log.Count, string.Join("\n", log));
        StringAssert.Contains(log[0], network.EngineDescription);

        var torchSharp = PinnedTorchSharp(network, images, batchSize: 8);
        if (faster == CnnInferenceEngine.TorchSharp)
            for (int i = 0; i < images.Length; i++) CollectionAssert.AreEqual(torchSharp[i], auto[i], $"row {i}: the same TorchSharp pass");
        else
            AssertClose(torchSharp, auto, 1e-4);
    }

    /// <summary>The calibration's timed pass of the chosen engine is the first batch's result: the batch is not run again.</summary>
    [TestMethod]
    public void TheCalibrationsOwnPassIsTheFirstBatchsResult()
    {
        var calls = new List<CnnInferenceEngine>();
        using var seam = AutoEngine.UseForTests(Prefer(CnnInferenceEngine.TorchSharp, calls));
        using var network = Network();
        int passes = 0;
        network.Model.register_forward_hook((_, input, output) =>
        {
            if (input.shape[0] == 8) passes++; // the batches' passes, not the export's own (its tracing and verification)
            return output;
        });
        var images = Images(16);

        var auto = network.ForwardAll(images, batchSize: 8);
        Assert.AreEqual(2, calls.Count, "one calibration, on the first batch");
        Assert.AreEqual(2, passes, $"one TorchSharp pass per batch of 8: the calibration's, then the second batch's; got {passes}");
        var torchSharp = PinnedTorchSharp(network, images, batchSize: 8);
        for (int i = 0; i < images.Length; i++) CollectionAssert.AreEqual(torchSharp[i], auto[i], $"row {i}");
    }

    [TestMethod]
    public void SmallBatchesAndReducedPrecisionRunTorchSharpWithoutMeasuring()
    {
        var calls = new List<CnnInferenceEngine>();
        using var seam = AutoEngine.UseForTests(Prefer(CnnInferenceEngine.OnnxRuntime, calls));
        using var network = Network();
        var images = Images(AutoEngine.MinimumBatch - 1);
        var small = network.ForwardAll(images, batchSize: 32);
        Assert.IsNull(network.AutoChoice);
        StringAssert.Contains(network.EngineDescription, $"passes of {images.Length} images, under the {AutoEngine.MinimumBatch}");
        for (int i = 0; i < images.Length; i++) CollectionAssert.AreEqual(PinnedTorchSharp(network, images, 32)[i], small[i]);

        network.UseCompute(CnnPrecision.BFloat16, CnnMemoryFormat.Contiguous, CnnInferenceEngine.Auto); // valid: Auto goes with any precision
        network.ForwardAll(Images(AutoEngine.MinimumBatch), batchSize: AutoEngine.MinimumBatch);
        Assert.IsNull(network.AutoChoice);
        StringAssert.Contains(network.EngineDescription, "auto: TorchSharp (computing in bfloat16");
        Assert.AreEqual(0, calls.Count, "nothing was measured");
        new CnnFeatureOptions { Engine = CnnInferenceEngine.Auto, Precision = CnnPrecision.BFloat16, StageIndices = [2] }.Validate();
        new CnnTrainerOptions { InferenceEngine = CnnInferenceEngine.Auto, InferencePrecision = CnnPrecision.BFloat16 }.Validate();
    }

    [TestMethod]
    public void TheDecisionIsKeptForTheProcessAndAFailingOnnxRuntimeFallsBack()
    {
        var calls = new List<CnnInferenceEngine>();
        var images = Images(8);
        using (AutoEngine.UseForTests(Prefer(CnnInferenceEngine.OnnxRuntime, calls)))
        {
            using (var first = Network()) first.ForwardAll(images, batchSize: 8);
            Assert.AreEqual(2, calls.Count);
            // Another network of the same architecture, input and batch (a transformer loaded again) reuses the decision, even if
            // a new measurement would now prefer TorchSharp.
            using var second = Network(seed: 2);
            second.ForwardAll(images, batchSize: 8);
            Assert.AreEqual(2, calls.Count, "no second calibration");
            Assert.AreEqual(CnnInferenceEngine.OnnxRuntime, second.AutoChoice);
            StringAssert.Contains(second.EngineDescription, "as measured earlier in this process");
            // Another batch size is another key: measured again.
            using var third = Network();
            third.ForwardAll(Images(9), batchSize: 9);
            Assert.AreEqual(4, calls.Count);
        }

        // ONNX Runtime failing (its export, session or run) never fails the prediction: TorchSharp, and the log says why.
        using (AutoEngine.UseForTests((engine, pass, n) => engine == CnnInferenceEngine.OnnxRuntime ? throw new InvalidOperationException("no session") : 1.0))
        {
            using var network = Network();
            var outputs = network.ForwardAll(images, batchSize: 8);
            Assert.AreEqual(CnnInferenceEngine.TorchSharp, network.AutoChoice);
            StringAssert.Contains(network.EngineDescription, "ONNX Runtime could not run this network (InvalidOperationException: no session)");
            var expected = PinnedTorchSharp(network, images, 8);
            for (int i = 0; i < images.Length; i++) CollectionAssert.AreEqual(expected[i], outputs[i]);
        }
    }

    [TestMethod]
    public void AutoIsTheDefaultAndAModelFileKeepsIt()
    {
        Assert.AreEqual(CnnInferenceEngine.Auto, new CnnTrainerOptions().InferenceEngine);
        Assert.AreEqual(CnnInferenceEngine.Auto, new CnnFeatureOptions().Engine);
        var calls = new List<CnnInferenceEngine>();
        using var seam = AutoEngine.UseForTests(Prefer(CnnInferenceEngine.OnnxRuntime, calls));
        var ml = new MLContext(seed: 1);
        var data = FashionMnistFixture.View(ml, train: false, perClass: 5, classes: 2);
        using var extractor = ml.Transforms.ExtractCnnFeatures(new CnnFeatureOptions
        {
            Architecture = "resnet18", Model = new() { InChannels = 1, ImageSize = Size }, CropPct = 1.0, BatchSize = 10,
        }).Fit(data);
        Assert.AreEqual(CnnInferenceEngine.Auto, extractor.Network.Engine);
        var before = extractor.Transform(data).GetColumn<float[]>("Features").ToArray();
        Assert.AreEqual(CnnInferenceEngine.OnnxRuntime, extractor.Network.AutoChoice);

        using var folder = new TempDirectory();
        CnnPipelineFile.Save(ml, extractor, data.Schema, folder.File("features.zip"));
        var reloadContext = new MLContext(seed: 1);
        var log = new List<string>();
        reloadContext.Log += (_, e) => { if (e.Source == "CnnInference" && e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Info) lock (log) log.Add(e.Message); };
        var loaded = CnnPipelineFile.Load(reloadContext, folder.File("features.zip"), out _);
        using var reloaded = CnnPipelineFile.Stages(loaded).OfType<CnnFeatureTransformer>().Single();
        Assert.AreEqual(CnnInferenceEngine.Auto, reloaded.Network.Engine, "stored as Auto, resolved where it is loaded");
        var after = reloaded.Transform(data).GetColumn<float[]>("Features").ToArray();
        Assert.AreEqual(CnnInferenceEngine.OnnxRuntime, reloaded.Network.AutoChoice);
        Assert.AreEqual(2, calls.Count, "the reload reused the process's decision");
        Assert.IsTrue(log.Any(m => m.Contains("auto: ONNX Runtime", StringComparison.Ordinal)), "logged to the loading context: " + string.Join("\n", log));
        for (int i = 0; i < before.Length; i++) CollectionAssert.AreEqual(before[i], after[i], $"row {i}: the same ONNX Runtime pass");
    }

    /// <summary>
    /// Batched transforms read and decode batch k + 1 while batch k runs: rows keep their order and content (against one
    /// image at a time), also when the consumer skips rows and when batches do not divide the rows.
    /// </summary>
    [TestMethod]
    public void PrefetchedBatchesKeepTheRowsOrderAndContent()
    {
        var ml = new MLContext(seed: 1);
        var data = FashionMnistFixture.View(ml, train: false, perClass: 4, classes: 3);
        using var extractor = ml.Transforms.ExtractCnnFeatures(new CnnFeatureOptions
        {
            Architecture = "resnet18", Model = new() { InChannels = 1, ImageSize = Size }, CropPct = 1.0, BatchSize = 5,
            Engine = CnnInferenceEngine.TorchSharp,
        }).Fit(data);
        var batched = extractor.Transform(data).GetColumn<float[]>("Features").ToArray();
        var images = data.GetColumn<byte[]>("Image").Select((b, i) => ImageSample.FromEncoded(b, 0, $"row {i}")).ToArray();
        Assert.AreEqual(12, images.Length);
        var single = images.Select(image => extractor.Network.ForwardAll([image], 1, preLogits: true)[0]).ToArray();
        AssertClose(single, batched, 1e-5);
        AssertClose(single, extractor.Network.ForwardAll(images, batchSize: 5, preLogits: true), 1e-5);

        // Reading every third row only: batches start where asked, prefetched rows are used or dropped.
        var view = extractor.Transform(data);
        var column = view.Schema["Features"];
        using var cursor = view.GetRowCursor([column]);
        var getter = cursor.GetGetter<VBuffer<float>>(column);
        VBuffer<float> value = default;
        for (int row = 0; cursor.MoveNext(); row++)
        {
            if (row % 3 != 0) continue;
            getter(ref value);
            AssertClose([single[row]], [value.DenseValues().ToArray()], 1e-5);
        }
    }
}
