using Cnn.MLNet.Data;
using Cnn.MLNet.Tests.Training;
using Cnn.Tests.Shared;
using Microsoft.ML;

namespace Cnn.MLNet.Tests.Scoring;

/// <summary>A fitted model serves many threads at once with the scores of serial use, and prediction memory stays flat.</summary>
[TestClass]
public sealed class ConcurrencyAndMemoryTests
{
    private sealed class Prediction
    {
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    private static (ITransformer Model, List<EncodedImageRow> Rows, IDataView Data, MLContext Ml) Fitted()
    {
        var ml = new MLContext(seed: 1);
        var raw = FashionMnistFixture.View(ml, train: true, perClass: 3, classes: 10);
        var options = new CnnTrainerOptions { Model = new() { InChannels = 1, ImageSize = 32 }, CropPct = 1.0, Epochs = 1, BatchSize = 10, Augment = false, Precision = CnnPrecision.Float32, MemoryFormat = CnnMemoryFormat.Contiguous, InferenceEngine = CnnInferenceEngine.TorchSharp };
        var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(CnnTrainer.LeNet5(options)).Fit(raw);
        return (model, ml.Data.CreateEnumerable<EncodedImageRow>(raw, reuseRowObject: false).ToList(), raw, ml);
    }

    /// <summary>
    /// 8 threads, each with its own prediction engine, make 1,000 predictions each over the same images: every score equals the
    /// serial one exactly; 4 threads enumerating one transformed data view at once get the serial scores too.
    /// </summary>
    [TestMethod]
    [Timeout(300_000, CooperativeCancellation = true)]
    public void EightThreadsPredictExactlyAsOne()
    {
        var (model, rows, data, ml) = Fitted();
        var engine = ml.Model.CreatePredictionEngine<EncodedImageRow, Prediction>(model);
        var serial = rows.Select(r => engine.Predict(r).Score.ToArray()).ToList();

        var mismatches = new System.Collections.Concurrent.ConcurrentBag<string>();
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, thread =>
        {
            var own = ml.Model.CreatePredictionEngine<EncodedImageRow, Prediction>(model);
            for (int i = 0; i < 1000; i++)
            {
                int row = (i * 7 + thread) % rows.Count;
                if (!own.Predict(rows[row]).Score.SequenceEqual(serial[row])) mismatches.Add($"thread {thread}, prediction {i}, row {row}");
            }
        });
        Assert.IsEmpty(mismatches, string.Join("; ", mismatches.Take(5)));

        var scored = model.Transform(data);
        var once = CnnTrainerTests.ScoresOf(ml, scored);
        var together = new List<float[]>[4];
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, t => together[t] = CnnTrainerTests.ScoresOf(ml, scored));
        foreach (var scores in together)
            for (int i = 0; i < once.Count; i++)
                CollectionAssert.AreEqual(once[i], scores[i], $"row {i}");
        foreach (var stage in Cnn.MLNet.Persistence.CnnPipelineFile.Stages(model).OfType<IDisposable>()) stage.Dispose();
    }

    /// <summary>10,000 single-image predictions: live tensors and resident memory stay flat after warm-up.</summary>
    [TestMethod]
    [DoNotParallelize] // counts the process's live tensors and resident memory
    public void MemoryStaysFlatOverTenThousandPredictions()
    {
        var (model, rows, _, ml) = Fitted();
        var engine = ml.Model.CreatePredictionEngine<EncodedImageRow, Prediction>(model);
        var probe = new EpochMemoryProbe();
        for (int i = 0; i < 10_000; i++)
        {
            engine.Predict(rows[i % rows.Count]);
            if ((i + 1) % 1000 == 0) probe.Sample();
        }
        probe.AssertFlat(warmupEpochs: 2);
        foreach (var stage in Cnn.MLNet.Persistence.CnnPipelineFile.Stages(model).OfType<IDisposable>()) stage.Dispose();
    }
}
