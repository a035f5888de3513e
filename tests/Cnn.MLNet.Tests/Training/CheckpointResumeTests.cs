using Cnn.Backbones.Models;
using Cnn.MLNet.Networks;
using Cnn.MLNet.Training;
using Cnn.MLNet.Training.Checkpoints;
using Cnn.Tests.Shared;
using Microsoft.ML;
using static TorchSharp.torch;

namespace Cnn.MLNet.Tests.Training;

/// <summary>
/// Checkpoints and resume in-process: a run stopped after an epoch or in the middle of one and resumed from its checkpoint ends
/// with exactly the weights of the run that was never stopped (dropout, mixup, the weight average, validation and the schedule
/// included); a resume with other options or data is refused by name; a damaged newest checkpoint falls back to the one before;
/// only the newest K are kept. The kill -9 test in a child process is in the CLI tests.
/// </summary>
[TestClass]
[DoNotParallelize] // compares same-seed runs: no other test may draw from TorchSharp's global generator meanwhile
public sealed class CheckpointResumeTests
{
    private static CnnTrainerOptions Options(string checkpoints) => new()
    {
        Architecture = "lenet5",
        Model = new ModelOptions { InChannels = 1, DropRate = 0.3 },
        Precision = CnnPrecision.Float32, MemoryFormat = CnnMemoryFormat.Contiguous, InferenceEngine = CnnInferenceEngine.TorchSharp,
        Epochs = 3,
        BatchSize = 8,
        LearningRate = 3e-3,
        Augment = true,
        MixupAlpha = 0.4,
        ModelEmaDecay = 0.9,
        ValidationFraction = 0.2,
        Seed = 3,
        CheckpointDirectory = checkpoints,
        CheckpointEverySteps = 2,
        CheckpointsKept = 50,
    };

    private static IDataView Data(MLContext ml, int perClass = 6)
    {
        var view = FashionMnistFixture.View(ml, train: true, perClass: perClass, classes: 4);
        return ml.Transforms.Conversion.MapValueToKey("Label").Fit(view).Transform(view);
    }

    private static Dictionary<string, Tensor> Fit(CnnTrainerOptions options, IDataView? data = null)
    {
        var ml = new MLContext(seed: 1);
        using var model = CnnTrainer.Create("lenet5", options, ml).Fit(data ?? Data(ml));
        return model.Network.Model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().to(ScalarType.Float32).clone());
    }

    /// <summary>A run of <paramref name="options"/> cancelled once <paramref name="stop"/> says so (it sees epoch and batch).</summary>
    private static void FitUntil(CnnTrainerOptions options, Func<BatchProgress, bool> stop)
    {
        using var cancel = new CancellationTokenSource();
        options.CancellationToken = cancel.Token;
        options.BatchCompleted = p => { if (stop(p)) cancel.Cancel(); };
        Assert.ThrowsExactly<OperationCanceledException>(() => Fit(options));
    }

    private static void AssertSame(Dictionary<string, Tensor> expected, Dictionary<string, Tensor> actual)
    {
        foreach (var (name, value) in expected)
            Assert.IsTrue(value.eq(actual[name]).all().item<bool>(), $"{name} differs by {(value - actual[name]).abs().max().item<float>()}");
    }

    [TestMethod]
    public void StoppedRunsResumeToTheUninterruptedWeights()
    {
        using var dir = new TempDirectory();
        var uninterrupted = Fit(Options(dir.File("whole")));

        // Stopped in epoch 2 after its 3rd batch: the newest checkpoint is mid-epoch (every 2 steps).
        FitUntil(Options(dir.File("mid")), p => p.Epoch == 2 && p.Batch == 3);
        StringAssert.Matches(Path.GetFileName(CheckpointStore.List(dir.File("mid"))[0]), new System.Text.RegularExpressions.Regex(@"^checkpoint-0001-00000[1-3]\.cnnckpt$"));
        var options = Options(dir.File("mid"));
        options.ResumeFrom = dir.File("mid");
        AssertSame(uninterrupted, Fit(options));

        // Stopped right after epoch 1 ended: resumed from the epoch's checkpoint.
        var atEpoch = Options(dir.File("epoch"));
        atEpoch.CheckpointEverySteps = null;
        FitUntil(atEpoch, p => p.Epoch == 2 && p.Batch == 1);
        StringAssert.EndsWith(CheckpointStore.List(dir.File("epoch"))[0], "checkpoint-0001-000000.cnnckpt");
        atEpoch = Options(dir.File("epoch"));
        atEpoch.CheckpointEverySteps = null;
        atEpoch.ResumeFrom = dir.File("epoch");
        AssertSame(uninterrupted, Fit(atEpoch));
    }

    [TestMethod]
    public void Float16RunsSkipOverflowedStepsAndResumeWithTheirLossScale()
    {
        // Float16 is for CUDA; libtorch's CPU kernels run it too, slowly, which lets the loss-scaled loop be tested here.
        ComputeSelection.Float16OnCpuForTests.Value = true;
        try
        {
            using var dir = new TempDirectory();
            CnnTrainerOptions Half(string folder)
            {
                var o = Options(folder);
                o.Precision = CnnPrecision.Float16;
                o.LossScaleGrowthInterval = 2;
                o.ValidationFraction = 0; // the last epoch's weights, not the best one's: every step counts
                return o;
            }
            var uninterrupted = Fit(Half(dir.File("whole")));
            // The checkpoints' scales, oldest first (the phase's last one starts the next phase afresh and keeps none).
            var scales = CheckpointStore.List(dir.File("whole")).Reverse().Select(file =>
            {
                using var checkpoint = TrainingCheckpoint.Load(file);
                return checkpoint.LossScale?.Scale;
            }).OfType<double>().ToList();
            string seen = string.Join(", ", scales);
            Assert.IsTrue(scales.Zip(scales.Skip(1)).Any(pair => pair.Second > pair.First), $"the scale grows after 2 finite steps: {seen}");
            Assert.IsTrue(scales.Zip(scales.Skip(1)).Any(pair => pair.Second < pair.First), $"and backs off when a gradient overflows float16: {seen}");
            Assert.IsTrue(uninterrupted.Values.All(t => t.isfinite().all().item<bool>()), "skipped steps leave the weights finite");

            // Stopped mid-epoch and resumed: only with the checkpoint's scale do the same steps overflow and the weights agree.
            FitUntil(Half(dir.File("mid")), p => p.Epoch == 2 && p.Batch == 3);
            var resumed = Half(dir.File("mid"));
            resumed.ResumeFrom = dir.File("mid");
            AssertSame(uninterrupted, Fit(resumed));
        }
        finally
        {
            ComputeSelection.Float16OnCpuForTests.Value = false;
        }
    }

    [TestMethod]
    public void FreezeEpochPhasesResumeToo()
    {
        using var dir = new TempDirectory();
        CnnTrainerOptions Staged(string folder)
        {
            var o = Options(folder);
            o.FreezeEpochs = 1;
            o.Epochs = 2;
            return o;
        }
        var uninterrupted = Fit(Staged(dir.File("whole")));
        FitUntil(Staged(dir.File("cut")), p => p.Epoch == 2 && p.Batch == 1); // the second phase's first batch
        var resumed = Staged(dir.File("cut"));
        resumed.ResumeFrom = dir.File("cut");
        AssertSame(uninterrupted, Fit(resumed));
    }

    [TestMethod]
    public void ResumingAnotherRunIsRefusedByName()
    {
        using var dir = new TempDirectory();
        FitUntil(Options(dir.File("run")), p => p.Epoch == 2);
        var other = Options(dir.File("run"));
        other.ResumeFrom = dir.File("run");
        other.LearningRate = 1e-2;
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => Fit(other));
        StringAssert.Contains(error.Message, "option LearningRate: the checkpoint's run had 0.003, this run has 0.01");

        var otherData = Options(dir.File("run"));
        otherData.ResumeFrom = dir.File("run");
        var ml = new MLContext(seed: 1);
        error = Assert.ThrowsExactly<InvalidOperationException>(() => Fit(otherData, Data(ml, perClass: 7)));
        StringAssert.Contains(error.Message, "training images");

        var otherModel = Options(dir.File("run"));
        otherModel.ResumeFrom = dir.File("run");
        otherModel.Model = new ModelOptions { InChannels = 1, DropRate = 0.1 };
        error = Assert.ThrowsExactly<InvalidOperationException>(() => Fit(otherModel));
        StringAssert.Contains(error.Message, "network");
    }

    [TestMethod]
    public void ADamagedNewestCheckpointFallsBackAndOnlyTheNewestAreKept()
    {
        using var dir = new TempDirectory();
        var uninterrupted = Fit(Options(dir.File("whole")));
        var kept = Options(dir.File("run"));
        kept.CheckpointsKept = 2;
        FitUntil(kept, p => p.Epoch == 3 && p.Batch == 1);
        var files = CheckpointStore.List(dir.File("run"));
        Assert.HasCount(2, files, string.Join(", ", files));

        // The newest loses its end: the one before is used, and the run still ends at the uninterrupted weights.
        var bytes = File.ReadAllBytes(files[0]);
        File.WriteAllBytes(files[0], bytes[..(bytes.Length / 2)]);
        var resumed = Options(dir.File("run"));
        resumed.ResumeFrom = dir.File("run");
        AssertSame(uninterrupted, Fit(resumed));

        // One flipped byte inside a tensor is caught by the checkpoint's hash.
        var file = CheckpointStore.List(dir.File("run"))[0];
        bytes = File.ReadAllBytes(file);
        bytes[^10] ^= 0x40;
        File.WriteAllBytes(file, bytes);
        var error = Assert.ThrowsExactly<InvalidDataException>(() => TrainingCheckpoint.Load(file));
        StringAssert.Contains(error.Message, "SHA-256");
        Assert.IsFalse(Directory.GetFiles(dir.File("run"), "*.tmp*").Any(), "no temporary files are left");
    }
}
