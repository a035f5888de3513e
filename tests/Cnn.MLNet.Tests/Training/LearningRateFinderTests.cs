using System.Globalization;
using System.Text.Json;
using Cnn.MLNet.Training;
using Cnn.Tests.Shared;
using Microsoft.ML;

namespace Cnn.MLNet.Tests.Training;

[TestClass]
public sealed class LearningRateFinderTests
{
    /// <summary>
    /// The sweep's rates, the debiased smoothing and the suggestion (steepest slope of the smoothed loss against log rate, before
    /// its minimum) equal a numpy computation of fastai's recipe on the same noisy loss curve, made at test time.
    /// </summary>
    [TestMethod]
    public void RatesSmoothingAndSuggestionMatchNumpy()
    {
        string output = ReferencePython.Run("""
            import json, numpy as np
            rng = np.random.default_rng(7)
            n, start, end, beta = 80, 1e-6, 3.0, 0.98
            rates = start * (end / start) ** (np.arange(n) / (n - 1))
            x = np.log(rates)
            losses = 2.3 - 1.5 / (1 + np.exp(-(x - np.log(3e-3)) * 1.5)) + np.exp((x - np.log(1.0)) * 2) + rng.normal(0, 0.03, n)
            avg, smoothed = 0.0, []
            for i, l in enumerate(losses):
                avg = beta * avg + (1 - beta) * l
                smoothed.append(avg / (1 - beta ** (i + 1)))
            smoothed = np.array(smoothed)
            end_index = int(np.argmin(smoothed))
            slope = np.gradient(smoothed, x)
            best = int(np.argmin(slope[: end_index + 1]))
            print(json.dumps({"rates": rates.tolist(), "losses": losses.tolist(), "smoothed": smoothed.tolist(), "suggested": float(rates[best]),
                              "n": n, "start": start, "end": end, "beta": beta}))
            """);
        using var json = JsonDocument.Parse(output);
        var root = json.RootElement;
        double[] Array(string name) => root.GetProperty(name).EnumerateArray().Select(v => v.GetDouble()).ToArray();
        var options = new LearningRateFinderOptions
        {
            StartLearningRate = root.GetProperty("start").GetDouble(), EndLearningRate = root.GetProperty("end").GetDouble(), Steps = root.GetProperty("n").GetInt32(),
        };
        var rates = Array("rates");
        for (int i = 0; i < rates.Length; i++)
            Assert.AreEqual(rates[i], LearningRateFinder.RateAt(options, i), 1e-12 * rates[i], $"rate {i}");
        var smoothed = LearningRateFinder.Smooth(Array("losses"), root.GetProperty("beta").GetDouble());
        var expected = Array("smoothed");
        for (int i = 0; i < expected.Length; i++)
            Assert.AreEqual(expected[i], smoothed[i], 1e-12, $"smoothed {i}");
        Assert.AreEqual(root.GetProperty("suggested").GetDouble(), LearningRateFinder.Suggest(rates, smoothed)!.Value, 1e-15);
        Assert.IsNull(LearningRateFinder.Suggest(rates, rates.Select(r => r).ToArray()), "a loss that only rises suggests nothing");
    }

    /// <summary>On real data the sweep rises until the loss diverges and suggests a rate inside the sweep.</summary>
    [TestMethod]
    public void SweepOnFashionMnistDivergesAndSuggestsARate()
    {
        var ml = new MLContext(seed: 1);
        var raw = FashionMnistFixture.View(ml, train: true, perClass: 10);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(raw).Transform(raw);
        var options = new CnnTrainerOptions { Model = new() { InChannels = 1, ImageSize = 32 }, CropPct = 1.0, BatchSize = 10, Augment = false, Precision = CnnPrecision.Float32, MemoryFormat = CnnMemoryFormat.Contiguous, InferenceEngine = CnnInferenceEngine.TorchSharp };
        var result = CnnTrainer.LeNet5(options).FindLearningRate(data, new LearningRateFinderOptions { Steps = 60 });
        Assert.IsTrue(result.Diverged, "a sweep to lr 10 diverges");
        Assert.IsTrue(result.LearningRates.Count is > 5 and < 60, result.LearningRates.Count.ToString(CultureInfo.InvariantCulture));
        Assert.IsNotNull(result.Suggested);
        Assert.IsTrue(result.Suggested > 1e-6 && result.Suggested < 1, $"suggested {result.Suggested}");
        Assert.HasCount(result.LearningRates.Count, result.SmoothedLosses);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => CnnTrainer.LeNet5(options).FindLearningRate(data, new LearningRateFinderOptions { StartLearningRate = 1, EndLearningRate = 0.1 }));
    }
}
