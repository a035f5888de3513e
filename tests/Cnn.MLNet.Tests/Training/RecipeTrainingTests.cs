using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.MLNet.Data;
using Cnn.MLNet.Mapping;
using Cnn.MLNet.Networks;
using Cnn.MLNet.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Tests.Training;

/// <summary>
/// The recipes inside the one training loop, on LeNet-5 (no BatchNorm, no dropout, so batches can be compared exactly):
/// gradient accumulation equals the larger batch, the EMA the loop keeps is the average of the weights after every step, the
/// freeze epochs train only the head, clipping bounds every step, and mixed runs are seeded.
/// </summary>
[TestClass]
[DoNotParallelize] // compares same-seed runs: no other test may draw from TorchSharp's global generator meanwhile
public sealed class RecipeTrainingTests
{
    private static CnnTrainerOptions Options(int batchSize = 8) => new()
    {
        Architecture = "lenet5",
        Model = new ModelOptions { InChannels = 1 },
        Precision = CnnPrecision.Float32, MemoryFormat = CnnMemoryFormat.Contiguous, InferenceEngine = CnnInferenceEngine.TorchSharp,
        Epochs = 1,
        BatchSize = batchSize,
        Augment = false,
        Optimizer = CnnOptimizer.Sgd,
        Momentum = 0,
        WeightDecay = 0,
        LearningRate = 0.05,
        Schedule = LearningRateScheduleKind.Constant,
        Seed = 5,
    };

    private static IReadOnlyList<ImageSample> Images(int perClass) => FashionMnistFixture.Slice(train: true, perClass: perClass, classes: 4).Samples;

    private static Dictionary<string, Tensor> Snapshot(nn.Module model) =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().DetachFromDisposeScope());

    /// <summary>Trains a fresh LeNet-5 on <paramref name="images"/>; <paramref name="observe"/> sees the network before training.</summary>
    private static Dictionary<string, Tensor> Train(CnnTrainerOptions options, IReadOnlyList<ImageSample> images, Action<CnnNetwork>? observe = null)
    {
        using var network = NetworkBuilder.Build(options.ToNetworkSpec().WithClasses(4), CPU, options.Seed);
        observe?.Invoke(network);
        using var cancellation = FitCancellation.Start(null, "test", default);
        new TrainingLoop(options, null, cancellation).Run(network, ClassificationObjective.Setup(options, network, images, []));
        return Snapshot(network.Model);
    }

    private static double MaxDifference(Dictionary<string, Tensor> a, Dictionary<string, Tensor> b) =>
        a.Keys.Max(k => (a[k] - b[k]).abs().max().item<float>());

    /// <summary>
    /// From a run's first step on, glibc's heap keeps what a step frees for the next step (NativeHeap), where the process may set
    /// it: on Linux without the user's own malloc settings. Elsewhere the status says why it did not.
    /// </summary>
    [TestMethod]
    public void ATrainingStepLeavesGlibcsHeapKeepingWhatAStepFrees()
    {
        Train(Options(), Images(2));
        string expected = NativeHeap.Refusal(OperatingSystem.IsLinux(), Environment.GetEnvironmentVariable) ?? "glibc's heap keeps up to 256 MiB free for the next training step";
        StringAssert.StartsWith(TorchRuntime.NativeHeapStatus, expected);
    }

    [TestMethod]
    public void AccumulatedBatchesEqualOneLargerBatch()
    {
        // 40 images: batches of 8 in groups of 2 (the last group a single batch) against batches of 16 (the last of 8).
        var images = Images(10);
        var accumulated = Options(8);
        accumulated.AccumulationSteps = 2;
        accumulated.Epochs = 2;
        var large = Options(16);
        large.Epochs = 2;
        var plain = Options(8);
        plain.Epochs = 2;
        var a = Train(accumulated, images);
        var b = Train(large, images);
        var c = Train(plain, images);
        Assert.IsLessThan(2e-6, MaxDifference(a, b), "accumulating 2 × 8 equals batches of 16");
        Assert.IsGreaterThan(1e-3, MaxDifference(a, c), "and differs from steps of 8");
    }

    [TestMethod]
    public void TheLoopsWeightAverageIsTheEmaOfEveryStep()
    {
        var images = Images(6); // 24 images: 3 steps of 8 per epoch
        var options = Options(8);
        options.Epochs = 2;
        options.ModelEmaDecay = 0.6;
        Dictionary<string, Tensor>? expected = null;
        CnnNetwork? current = null;
        options.BatchCompleted = _ =>
        {
            foreach (var (name, value) in current!.Model.state_dict())
                if (value.is_floating_point()) expected![name] = expected[name].Times(0.6).Plus(value.Times(0.4)).DetachFromDisposeScope();
        };
        var averaged = Train(options, images, network => { current = network; expected = Snapshot(network.Model); });
        Assert.IsLessThan(1e-6, MaxDifference(averaged, expected!), "the returned weights are the average");

        options.UseModelEmaWeights = false;
        options.BatchCompleted = null;
        var trained = Train(options, images);
        var withoutEma = Options(8);
        withoutEma.Epochs = 2;
        Assert.AreEqual(0, MaxDifference(trained, Train(withoutEma, images)), "the average does not change training");
        Assert.IsGreaterThan(1e-3, MaxDifference(trained, averaged));
    }

    [TestMethod]
    public void FreezeEpochsTrainTheHeadFirstThenEverything()
    {
        var images = Images(4);
        var options = Options(8);
        options.FreezeEpochs = 1;
        options.Epochs = 1;
        var epochs = new List<EpochMetrics>();
        Dictionary<string, Tensor>? initial = null, afterHeadOnly = null;
        CnnNetwork? current = null;
        options.EpochCompleted = m =>
        {
            epochs.Add(m);
            if (m.Epoch == 1) afterHeadOnly = Snapshot(current!.Model);
        };
        var final = Train(options, images, network => { current = network; initial = Snapshot(network.Model); });
        Assert.HasCount(2, epochs, "freeze epochs come before the epochs");
        string head = current!.Model.PretrainedConfig.Classifier + ".";
        foreach (var name in initial!.Keys)
        {
            bool moved = (afterHeadOnly![name] - initial[name]).abs().max().item<float>() > 0;
            Assert.AreEqual(name.StartsWith(head, StringComparison.Ordinal), moved, $"{name} after the head-only epoch");
            Assert.IsTrue((final[name] - afterHeadOnly[name]).abs().max().item<float>() > 0, $"{name} trains in the second phase");
        }
    }

    [TestMethod]
    public void ClippingBoundsEveryStep()
    {
        var images = Images(4);
        double Largest(double? clip)
        {
            var options = Options(8);
            options.LearningRate = 1;
            options.ClipGradNorm = clip;
            Dictionary<string, Tensor>? last = null;
            CnnNetwork? current = null;
            double largest = 0;
            options.BatchCompleted = _ =>
            {
                var now = Snapshot(current!.Model);
                double squared = now.Keys.Sum(k => { var d = now[k] - last![k]; return (d * d).sum().item<float>(); });
                largest = Math.Max(largest, Math.Sqrt(squared));
                last = now;
            };
            Train(options, images, network => { current = network; last = Snapshot(network.Model); });
            return largest;
        }
        double clipped = Largest(1e-3), free = Largest(null);
        Assert.IsLessThanOrEqualTo(1e-3 * (1 + 1e-3), clipped, "SGD at lr 1 moves by at most the clipped norm");
        Assert.IsGreaterThan(10 * clipped, free, "without clipping the steps are larger");
    }

    [TestMethod]
    public void MixedRunsAreSeededAndDifferFromPlainOnes()
    {
        var images = Images(4);
        CnnTrainerOptions Mixed()
        {
            var options = Options(8);
            options.Epochs = 2;
            options.MixupAlpha = 0.8;
            options.CutMixAlpha = 1.0;
            options.LabelSmoothing = 0.1;
            return options;
        }
        var first = Train(Mixed(), images);
        Assert.AreEqual(0, MaxDifference(first, Train(Mixed(), images)), "same seed, same mixing");
        var plain = Options(8);
        plain.Epochs = 2;
        Assert.IsGreaterThan(1e-4, MaxDifference(first, Train(plain, images)));
    }
}
