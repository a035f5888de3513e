using Cnn.Backbones.Native;
using Cnn.MLNet.Training;
using Cnn.MLNet.Training.Checkpoints;
using Cnn.Tests.Shared;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.MLNet.Tests.Training;

/// <summary>
/// Float16's loss scaling against PyTorch's <c>GradScaler</c> kernels run at test time (<see cref="LibTorchGradScaler"/>): step
/// by step the same verdict, the same unscaled gradients to the bit, the same scale and growth tracker; and its state survives a
/// checkpoint.
/// </summary>
[TestClass]
public sealed class LossScalerTests
{
    [TestMethod]
    [DataRow(LossScaler.DefaultInitialScale, 3, 1.0, DisplayName = "GradScaler's initial scale, growth every 3 finite steps")]
    [DataRow(1.7e38, 1, 1e-30, DisplayName = "near float32's largest: the scale does not grow to infinity")]
    public void StepsFollowGradScalersKernels(double initialScale, int growthInterval, double gradientSize)
    {
        TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        var generator = new Generator(7);
        Parameter[] parameters = [new(zeros(4, 3)), new(zeros(5)), new(zeros(2, 2, 2))];
        var scaler = new LossScaler(initialScale, growthInterval);
        var scale = tensor(new[] { (float)initialScale });
        var tracker = zeros(1, ScalarType.Int32);
        // Which steps overflow, and with what: an infinity of either sign or a NaN, in one parameter's gradient.
        var poisoned = new Dictionary<int, (int Parameter, double Value)>
        {
            [2] = (0, double.PositiveInfinity), [7] = (1, double.NaN), [8] = (2, double.NegativeInfinity), [15] = (0, double.NaN),
        };
        var scales = new HashSet<double>();
        for (int step = 0; step < 20; step++)
        {
            foreach (var p in parameters) p.grad?.zero_();
            var trueGradients = parameters.Select(p => randn(p.shape, generator: generator).Times(gradientSize)).ToArray();
            if (poisoned.TryGetValue(step, out var poison))
                using (var value = Scalars.Held(poison.Value)) trueGradients[poison.Parameter].view(-1)[1].fill_(value);
            var loss = parameters.Zip(trueGradients, (p, g) => p.mul(g).sum()).Aggregate((a, b) => a.add(b, Scalars.One));
            scaler.ScaleLoss(loss).backward();
            var expected = parameters.Select(p => p.grad!.clone()).ToArray();

            bool finite = scaler.UnscaleAndUpdate(parameters);

            var foundInf = zeros(1);
            LibTorchGradScaler.Unscale(expected, foundInf, tensor(new[] { (float)(1.0 / scale.item<float>()) }));
            LibTorchGradScaler.Update(scale, tracker, foundInf, LossScaler.GrowthFactor, LossScaler.BackoffFactor, growthInterval);
            Assert.AreEqual(foundInf.item<float>() == 0, finite, $"step {step}: the verdict");
            Assert.AreEqual(!poisoned.ContainsKey(step), finite, $"step {step}: the poisoned steps are the skipped ones");
            for (int i = 0; i < parameters.Length; i++)
                if (finite)
                    Assert.IsTrue(parameters[i].grad!.equal(expected[i]).all().item<bool>(), $"step {step}, parameter {i}: unscaled gradients differ from GradScaler's");
                else
                    Assert.AreEqual(0f, parameters[i].grad!.abs().sum().item<float>(), $"step {step}: a skipped step's gradients are cleared");
            Assert.AreEqual((double)scale.item<float>(), scaler.Scale, $"step {step}: the scale");
            Assert.AreEqual(tracker.item<int>(), scaler.GrowthTracker, $"step {step}: the growth tracker");
            scales.Add(scaler.Scale);
        }
        Assert.AreEqual(poisoned.Count, scaler.SkippedSteps);
        Assert.IsGreaterThan(2, scales.Count, $"the sequence backs off and grows: scales seen {string.Join(", ", scales)}");
    }

    [TestMethod]
    public void TheScaleIsKeptInCheckpointsAndRestoredOnlyWhereAScalerCouldReachIt()
    {
        TorchRuntime.EnsureLoaded();
        using var dir = new TempDirectory();
        var scaler = new LossScaler(growthInterval: 5);
        scaler.Update(finite: false);
        scaler.Update(finite: true);
        scaler.Update(finite: true);
        foreach (var state in new LossScaleState?[] { scaler.State, null })
        {
            string file = dir.File($"checkpoint-{state is null}.safetensors");
            using (var written = Checkpoint(state)) written.Save(file);
            using var read = TrainingCheckpoint.Load(file);
            Assert.AreEqual(state, read.LossScale);
        }
        string damaged = dir.File("damaged.safetensors");
        using (var written = Checkpoint(new LossScaleState(-4, 1))) written.Save(damaged);
        var error = Assert.ThrowsExactly<InvalidDataException>(() => TrainingCheckpoint.Load(damaged));
        StringAssert.Contains(error.Message, damaged);
        StringAssert.Contains(error.Message, "loss scale");

        var resumed = new LossScaler(growthInterval: 5);
        resumed.Restore(scaler.State);
        Assert.AreEqual(LossScaler.DefaultInitialScale / 2, resumed.Scale);
        Assert.AreEqual(2, resumed.GrowthTracker);
        Assert.ThrowsExactly<InvalidDataException>(() => resumed.Restore(new LossScaleState(1024, 5)), "a tracker at the interval would have grown");
        Assert.ThrowsExactly<InvalidDataException>(() => resumed.Restore(new LossScaleState(double.NaN, 0)));
    }

    private static TrainingCheckpoint Checkpoint(LossScaleState? lossScale) => new()
    {
        Position = new TrainingPosition(0, 1, 0, 10),
        Fingerprint = RunFingerprint.Of(new CnnTrainerOptions(), [("data", "none")]),
        Model = new Dictionary<string, Tensor> { ["weight"] = ones(2) },
        Optimizer = [1, 2, 3],
        Random = [4, 5],
        LossScale = lossScale,
    };
}
