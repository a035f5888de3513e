using Cnn.MLNet.Training;
using Microsoft.ML;

namespace Cnn.MLNet.Tests.Training;

[TestClass]
public sealed class ValidationAndScheduleTests
{
    [TestMethod]
    public void BestValidationEpochIsRestoredAndEarlyStoppingEnds()
    {
        var ml = new MLContext(seed: 2);
        var raw = FashionMnistFixture.View(ml, train: true, perClass: 12, classes: 3);
        var mapper = ml.Transforms.Conversion.MapValueToKey("Label").Fit(raw);
        var train = mapper.Transform(raw);
        var validation = mapper.Transform(FashionMnistFixture.View(ml, train: false, perClass: 10, classes: 3));
        var epochs = new List<EpochMetrics>();
        var options = new CnnTrainerOptions
        {
            ImageColumnName = "Image", Model = new() { InChannels = 1, ImageSize = 32 }, CropPct = 1.0, Epochs = 6, BatchSize = 12, Precision = CnnPrecision.Float32, MemoryFormat = CnnMemoryFormat.Contiguous, InferenceEngine = CnnInferenceEngine.TorchSharp,
            LearningRate = 3e-3, Augment = false, Seed = 4, ValidationSet = validation,
            EarlyStoppingMetric = EarlyStoppingMetric.ValidationAccuracy, EarlyStoppingPatience = 2,
            EpochCompleted = epochs.Add,
        };
        using var model = CnnTrainer.ResNet18(options).Fit(train);

        Assert.IsTrue(epochs.All(e => e.ValidationAccuracy is not null && e.ValidationLoss is not null));
        int best = epochs.Select((e, i) => (e.ValidationAccuracy!.Value, i)).OrderByDescending(t => t.Value).ThenBy(t => t.i).First().i;
        // Training continues until 'patience' epochs without improvement, or the last epoch.
        Assert.IsTrue(epochs.Count == 6 || epochs.Count - 1 - best >= 2, $"stopped after {epochs.Count} epochs, best was {best + 1}");
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(validation));
        Assert.AreEqual(epochs[best].ValidationAccuracy!.Value, metrics.MicroAccuracy, 1e-9, "the best epoch's weights must be the ones kept");
    }

    /// <summary>
    /// <c>ValidationFraction</c> holds out a stratified, seeded part of the training data inside <c>Fit</c>; validation-loss early
    /// stopping works on it; the same seed gives the same model; SGD with momentum trains as AdamW does; the learning rate the loop
    /// reports follows the warm-up + cosine schedule.
    /// </summary>
    [TestMethod]
    [DoNotParallelize] // compares same-seed runs: no other test may draw from TorchSharp's global generator meanwhile
    public void ValidationFractionSeedsSgdAndTheScheduleInsideFit()
    {
        var ml = new MLContext(seed: 2);
        var raw = FashionMnistFixture.View(ml, train: true, perClass: 10, classes: 3);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(raw).Transform(raw);
        List<EpochMetrics> Run(out List<float[]> scores, CnnOptimizer optimizer = CnnOptimizer.AdamW)
        {
            var epochs = new List<EpochMetrics>();
            var options = new CnnTrainerOptions
            {
                ImageColumnName = "Image", Model = new() { InChannels = 1, ImageSize = 32 }, CropPct = 1.0, Epochs = 4, BatchSize = 8, Precision = CnnPrecision.Float32, MemoryFormat = CnnMemoryFormat.Contiguous, InferenceEngine = CnnInferenceEngine.TorchSharp,
                LearningRate = optimizer == CnnOptimizer.Sgd ? 0.05 : 2e-3, Optimizer = optimizer, WarmupEpochs = 1, Augment = false, Seed = 4,
                ValidationFraction = 0.2, EarlyStoppingMetric = EarlyStoppingMetric.ValidationLoss, EarlyStoppingPatience = 10,
                EpochCompleted = epochs.Add,
            };
            using var model = CnnTrainer.ResNet18(options, ml).Fit(data);
            scores = CnnTrainerTests.ScoresOf(ml, model.Transform(data));
            return epochs;
        }

        var first = Run(out var firstScores);
        var second = Run(out var secondScores);
        Assert.HasCount(4, first);
        Assert.IsTrue(first.All(e => e.ValidationLoss is not null), "the held-out fraction is validated every epoch");
        for (int i = 0; i < firstScores.Count; i++)
            CollectionAssert.AreEqual(firstScores[i], secondScores[i], $"row {i}: the same seed gives the same model");
        CollectionAssert.AreEqual(first.Select(e => e.TrainLoss).ToArray(), second.Select(e => e.TrainLoss).ToArray());
        // 30 images, 20% held out stratified: 24 train in 3 batches of 8 (all 30 would be 4 batches), 6 validate. The reported rate
        // is the epoch's last step's: 3 steps per epoch, 3 warm-up steps, cosine over the other 9.
        var schedule = new LearningRateSchedule(2e-3, totalSteps: 12, warmupSteps: 3, LearningRateScheduleKind.Cosine);
        for (int e = 0; e < 4; e++)
            Assert.AreEqual(schedule.RateAt(3 * e + 2), first[e].LearningRate, 1e-12, $"epoch {e + 1} learning rate");

        var sgd = Run(out _, CnnOptimizer.Sgd);
        Assert.IsTrue(sgd.All(e => double.IsFinite(e.TrainLoss)));
        Assert.IsTrue(sgd[^1].TrainLoss < sgd[0].TrainLoss, $"SGD lowers the loss: {sgd[0].TrainLoss:F4} -> {sgd[^1].TrainLoss:F4}");
    }

    [TestMethod]
    public void CudaWithoutAGpuIsAClearError()
    {
        Cnn.Backbones.Native.TorchRuntime.EnsureLoaded(); // before this test touches TorchSharp itself
        if (TorchSharp.torch.cuda.is_available()) Assert.Inconclusive("a CUDA GPU is available here: the error cannot occur");
        var ml = new MLContext();
        var raw = FashionMnistFixture.View(ml, train: true, perClass: 2, classes: 2);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(raw).Transform(raw);
        var options = new CnnTrainerOptions { ImageColumnName = "Image", Model = new() { InChannels = 1, ImageSize = 32 }, Epochs = 1, Device = CnnDevice.Cuda };
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => CnnTrainer.ResNet18(options, ml).Fit(data));
        StringAssert.Contains(error.Message, "no CUDA GPU");
        StringAssert.Contains(error.Message, "libtorch-cuda-");
    }

    [TestMethod]
    public void ValidationFractionNeedsValidationForEarlyStopping()
    {
        var options = new CnnTrainerOptions { EarlyStoppingPatience = 2 };
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => CnnTrainer.ResNet18(options));
        StringAssert.Contains(error.Message, "ValidationFraction");
    }

    /// <summary>
    /// Every step of every schedule equals PyTorch's schedulers stepped once per batch, computed at test time: LinearLR warm-up then
    /// CosineAnnealingLR (SequentialLR), constant after warm-up, and OneCycleLR. In particular the last cosine step is above the
    /// minimum: no step is wasted at rate 0 (the "lr 0" of the last epoch).
    /// </summary>
    [TestMethod]
    public void SchedulesMatchPyTorchStepByStep()
    {
        var cases = new (string Name, LearningRateSchedule Schedule)[]
        {
            ("cosine_warmup", new LearningRateSchedule(0.1, totalSteps: 110, warmupSteps: 10, LearningRateScheduleKind.Cosine, minRate: 0.001)),
            ("cosine", new LearningRateSchedule(2e-3, totalSteps: 37, warmupSteps: 0, LearningRateScheduleKind.Cosine)),
            ("constant_warmup", new LearningRateSchedule(0.01, totalSteps: 20, warmupSteps: 4, LearningRateScheduleKind.Constant)),
            ("onecycle", new LearningRateSchedule(0.05, totalSteps: 93, warmupSteps: 0, LearningRateScheduleKind.OneCycle)),
        };
        string output = Cnn.Tests.Shared.ReferencePython.Run("""
            import json, torch
            from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR, ConstantLR, OneCycleLR
            def rates(make, base, steps):
                opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
                sched = make(opt)
                out = []
                for _ in range(steps):
                    out.append(opt.param_groups[0]["lr"])
                    opt.step(); sched.step()
                return out
            def warm(opt, w, then):
                return SequentialLR(opt, [LinearLR(opt, start_factor=1 / w, total_iters=w - 1), then(opt)], milestones=[w])
            print(json.dumps({
                "cosine_warmup": rates(lambda o: warm(o, 10, lambda o: CosineAnnealingLR(o, T_max=100, eta_min=0.001)), 0.1, 110),
                "cosine": rates(lambda o: CosineAnnealingLR(o, T_max=37), 2e-3, 37),
                "constant_warmup": rates(lambda o: warm(o, 4, lambda o: ConstantLR(o, factor=1.0, total_iters=0)), 0.01, 20),
                "onecycle": rates(lambda o: OneCycleLR(o, max_lr=0.05, total_steps=93), 0.05, 93),
            }))
            """);
        using var reference = System.Text.Json.JsonDocument.Parse(output);
        foreach (var (name, schedule) in cases)
        {
            var expected = reference.RootElement.GetProperty(name).EnumerateArray().Select(v => v.GetDouble()).ToArray();
            Assert.AreEqual(schedule.TotalSteps, expected.Length, name);
            for (int step = 0; step < expected.Length; step++)
                Assert.AreEqual(expected[step], schedule.RateAt(step), 1e-9 * expected.Max(), $"{name} step {step}");
        }
        Assert.IsTrue(cases[1].Schedule.RateAt(36) > 0, "the last cosine step still learns");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new LearningRateSchedule(double.NaN, 10, 0, LearningRateScheduleKind.Cosine));
    }
}
