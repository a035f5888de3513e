using System.Diagnostics;
using System.Text.RegularExpressions;
using Cnn.MLNet.Persistence;
using Cnn.MLNet.Scoring;
using Cnn.MLNet.Training.Checkpoints;
using Cnn.MLNet.Tests.Cli;
using Cnn.Tests.Shared;
using Microsoft.ML;

namespace Cnn.MLNet.Tests.Distributed;

/// <summary>
/// <c>cnn train</c> under <c>mpirun -np 2</c> on localhost: the same weights as one process with the doubled batch, one saved model
/// that evaluates as any other, and a killed rank ending the launch with an error within a time limit.
/// </summary>
[TestClass]
public sealed class MpiTrainingTests
{
    private static TempDirectory? _dir;

    private static string Folder => _dir!.File("colours");

    [ClassInitialize]
    public static void WriteData(TestContext _)
    {
        _dir = new TempDirectory();
        TrainEvalCommandTests.WriteColourFolder(Folder, ["blue", "green", "red"], 16, seed: 5);
    }

    [ClassCleanup]
    public static void RemoveData() => _dir?.Dispose();

    /// <summary>
    /// Plain SGD (momentum 0.9, no weight decay, constant rate, no augmentation) on lenet5, which has no BatchNorm, in float32
    /// contiguous whatever Auto would pick on this machine (the comparisons are of float32 rounding).
    /// </summary>
    private static string[] Train(int batch, string output, int epochs = 2) =>
        ["train", "--model", "lenet5", "--data", Folder, "--epochs", epochs.ToString(), "--batch-size", batch.ToString(), "--image-size", "32",
         "--opt", "sgd", "--weight-decay", "0", "--sched", "constant", "--lr", "0.05", "--augment", "off", "--val-split", "0", "--threads", "1",
         "--precision", "float32", "--memory-format", "contiguous", "--quiet", "--output", output];

    /// <summary>
    /// Two ranks of batch 4 take, step by step, the images one process of batch 8 takes (the shards of one permutation), and the
    /// averaged gradient of two means of 4 is the mean of 8: after 12 steps the weights agree to float rounding (1e-5), while a
    /// single process of batch 4 ends elsewhere. Rank 0 alone prints and saves; the file evaluates like any other.
    /// </summary>
    [TestMethod]
    public void TwoRanksOfBatchBTrainTheWeightsOfOneProcessOfBatch2B()
    {
        string two = _dir!.File("two.zip"), one = _dir.File("one.zip"), small = _dir.File("small.zip");
        string output = MpiLauncher.Succeed(2, Train(4, two));
        MpiLauncher.Succeed(1, Train(8, one));
        MpiLauncher.Succeed(1, Train(4, small));

        Assert.AreEqual(1, Regex.Matches(output, "saved: ").Count, output);
        Assert.AreEqual(1, Regex.Matches(output, "epoch 2/2").Count, output);
        StringAssert.Matches(output, new Regex(@"data-parallel: 2 ranks, 12 steps, [\d.]+ MB of gradients per step in 1 allreduces"));
        Assert.IsFalse(File.Exists(_dir.File("two.zip.tmp")));

        double same = MaxDifference(two, one), other = MaxDifference(small, one);
        Console.WriteLine($"max |dw|: 2 x 4 vs 1 x 8 {same:G3}; 1 x 4 vs 1 x 8 {other:G3}");
        Assert.IsLessThan(1e-5, same, $"2 ranks x 4 vs 1 x 8: max |dw| = {same:G3}");
        Assert.IsGreaterThan(1e-3, other, $"1 x 4 vs 1 x 8 must differ (max |dw| = {other:G3}), or the comparison proves nothing");

        string eval = MpiLauncher.Succeed(1, "eval", "--model-file", two, "--data", Folder);
        StringAssert.Matches(eval, new Regex(@"accuracy [\d.]+%.*48 images"));
    }

    /// <summary>
    /// The same through <c>cnn train --sync-bn</c> under mpirun: resnet18 (20 BatchNorm layers) at 64 px, two ranks of batch 24
    /// against one process of batch 48, one SGD step on the 48 images. float32 gradients of this from-scratch network are only a
    /// few percent accurate (against float64; <see cref="SynchronizedBatchNormTests"/> shows the arithmetic exact in float64), and
    /// the training loop rounds differently from one process, so the bound is on the step's result, relative to each tensor's
    /// largest value: within 5% synchronised (measured 0.3% on one CPU and 1.7% on another, whose oneDNN kernels round
    /// differently), and at least 10× further with each rank's own statistics (the default; measured 161%).
    /// </summary>
    [TestMethod]
    public void WithSynchronisedBatchNormTwoRanksOfBatchBTakeTheStepOfOneProcessOfBatch2B()
    {
        string synced = _dir!.File("sync.zip"), perRank = _dir.File("per-rank.zip"), one = _dir.File("one-bn.zip");
        string[] Resnet(int batch, string output) =>
            [.. Train(batch, output, epochs: 1).Select(a => a switch { "lenet5" => "resnet18", "0.05" => "0.01", "32" => "64", _ => a })];
        string log = MpiLauncher.Succeed(2, [.. Resnet(24, synced), "--sync-bn"]);
        MpiLauncher.Succeed(2, Resnet(24, perRank));
        MpiLauncher.Succeed(1, Resnet(48, one));
        StringAssert.Contains(log, "1 steps");
        StringAssert.Contains(log, "; BatchNorm synchronised in 20 layers");

        double same = MaxDifference(synced, one, relative: true), other = MaxDifference(perRank, one, relative: true);
        Console.WriteLine($"max |dw| / max |w| against 1 x 48: 2 x 24 synchronised {same:G3}; 2 x 24 per-rank statistics {other:G3}");
        Assert.IsLessThan(5e-2, same, $"2 ranks x 24 with --sync-bn vs 1 x 48: max |dw| / max |w| = {same:G3}");
        Assert.IsGreaterThan(10 * same, other, $"per-rank statistics (max |dw| / max |w| = {other:G3}) must differ far more than synchronised ones ({same:G3})");
    }

    /// <summary>
    /// <c>cnn distill</c> under mpirun: the student trains data-parallel (the teacher, in eval mode, runs on each rank's shard),
    /// rank 0 alone reports and saves, and the student file evaluates like any other.
    /// </summary>
    [TestMethod]
    public void DistillationRunsDataParallelAndSavesOneStudent()
    {
        string teacher = _dir!.File("teacher.zip"), student = _dir.File("student.zip");
        MpiLauncher.Succeed(1, Train(8, teacher));
        string output = MpiLauncher.Succeed(2, "distill", "--teacher", teacher, "--student", "lenet5", "--data", Folder, "--epochs", "2",
            "--batch-size", "4", "--image-size", "32", "--val-split", "0", "--augment", "off", "--threads", "1", "--precision", "float32",
            "--memory-format", "contiguous", "--quiet", "--output", student);
        Assert.AreEqual(1, Regex.Matches(output, "saved: ").Count, output);
        Assert.AreEqual(1, Regex.Matches(output, "epoch 2/2").Count, output);
        StringAssert.Matches(output, new Regex(@"data-parallel: 2 ranks, 12 steps"));
        string eval = MpiLauncher.Succeed(1, "eval", "--model-file", student, "--data", Folder);
        StringAssert.Matches(eval, new Regex(@"accuracy [\d.]+%.*48 images"));
    }

    /// <summary>
    /// A 2-rank run resumed under mpirun from its first epoch's checkpoint (rank 0 wrote it; every rank loads it) ends with the
    /// weights of the uninterrupted run; resuming it as a single process is refused, naming the number of processes.
    /// </summary>
    [TestMethod]
    public void ATwoRankRunResumesWithTwoRanksAndOnlyWithTwo()
    {
        string checkpoints = _dir!.File("mpi-checkpoints"), whole = _dir.File("whole.zip"), resumed = _dir.File("resumed.zip");
        MpiLauncher.Succeed(2, [.. Train(4, whole), "--checkpoint-dir", checkpoints]);
        var written = CheckpointStore.List(checkpoints);
        Assert.HasCount(2, written, "one checkpoint per epoch, written by rank 0 alone");
        string firstEpoch = written[^1];
        string log = MpiLauncher.Succeed(2, [.. Train(4, resumed), "--resume", firstEpoch]);
        Assert.AreEqual(1, Regex.Matches(log, "epoch 2/2").Count, log);
        Assert.DoesNotContain("epoch 1/2", log, "the resumed run starts after the checkpoint's epoch");
        double difference = MaxDifference(resumed, whole);
        Console.WriteLine($"resumed vs uninterrupted: max |dw| {difference:G3}");
        Assert.IsLessThan(1e-6, difference, $"resumed vs uninterrupted: max |dw| = {difference:G3}");

        var (exit, output) = MpiLauncher.Run(1, [.. Train(4, _dir.File("single.zip")), "--resume", firstEpoch]);
        Assert.AreNotEqual(0, exit, output);
        StringAssert.Contains(output, "processes", output);
    }

    /// <summary>Killing rank 1 mid-run (SIGKILL) ends mpirun with a non-zero exit and a message naming the rank, within 60 s.</summary>
    [TestMethod]
    public void AKilledRankEndsTheLaunchWithAnErrorWithinATimeLimit()
    {
        string marker = Guid.NewGuid().ToString("N");
        using var launch = MpiLauncher.StartRanks(2, Train(4, _dir!.File("killed.zip"), epochs: 100000), marker);
        var started = Stopwatch.StartNew();
        string? line;
        while ((line = launch.StandardOutput.ReadLine()) is not null && !line.Contains("epoch 1/", StringComparison.Ordinal)) // a terminal escape may precede it
            Assert.IsLessThan(90, started.Elapsed.TotalSeconds, "no epoch finished");
        Assert.IsNotNull(line, "the launch ended before its first epoch");

        int victim = RankProcess(marker, rank: 1);
        Process.GetProcessById(victim).Kill();
        var clock = Stopwatch.StartNew();
        var (exit, output) = MpiLauncher.Finish(launch, TimeSpan.FromSeconds(60));
        Assert.AreNotEqual(0, exit, output);
        StringAssert.Matches(output, new Regex("rank 1 .*(signal 9|Killed)", RegexOptions.Singleline), output);
        Assert.IsFalse(File.Exists(_dir.File("killed.zip")), "nothing is saved");
        Console.WriteLine($"mpirun ended {clock.Elapsed.TotalSeconds:0.0} s after the kill");
    }

    /// <summary>A rank that fails (here: a corrupt image in its shard) prints why, with its rank, and stops every rank: mpirun exits non-zero.</summary>
    [TestMethod]
    public void AFailingRankStopsEveryRankWithItsReason()
    {
        string data = _dir!.File("corrupt");
        TrainEvalCommandTests.WriteColourFolder(data, ["blue", "red"], 4, seed: 7);
        File.WriteAllText(Path.Combine(data, "red", "broken.png"), "not a png");
        var arguments = Train(4, _dir.File("corrupt.zip")).ToArray();
        arguments[Array.IndexOf(arguments, Folder)] = data;
        using var launch = MpiLauncher.StartRanks(2, arguments);
        var (exit, output) = MpiLauncher.Finish(launch, TimeSpan.FromSeconds(60));
        Assert.AreNotEqual(0, exit, output);
        StringAssert.Matches(output, new Regex(@"cnn: rank [01] of 2 failed: .*broken\.png.* Stopping every rank\."), output);
        Assert.IsFalse(File.Exists(_dir.File("corrupt.zip")), "nothing is saved");
    }

    /// <summary>The process id of rank <paramref name="rank"/> of the launch marked <paramref name="marker"/>, from /proc.</summary>
    private static int RankProcess(string marker, int rank)
    {
        foreach (var folder in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(folder), out int pid)) continue;
            string environment;
            try { environment = File.ReadAllText(Path.Combine(folder, "environ")); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            var variables = environment.Split('\0');
            if (variables.Contains($"CNN_MPI_TEST={marker}") && variables.Contains($"OMPI_COMM_WORLD_RANK={rank}")
                && File.ReadAllText(Path.Combine(folder, "cmdline")).Contains("cnn.dll", StringComparison.Ordinal))
                return pid;
        }
        Assert.Fail($"no process of rank {rank} found");
        return -1;
    }

    /// <summary>
    /// The largest absolute difference between the two saved networks' parameters and buffers; with <paramref name="relative"/>,
    /// each tensor's relative to its largest value in <paramref name="b"/>.
    /// </summary>
    private static double MaxDifference(string a, string b, bool relative = false)
    {
        var ml = new MLContext();
        var first = CnnPipelineFile.Load(ml, a, out _);
        var second = CnnPipelineFile.Load(ml, b, out _);
        try
        {
            var x = CnnPipelineFile.Stages(first).OfType<CnnClassifierTransformer>().Single().Network.Model.state_dict();
            var y = CnnPipelineFile.Stages(second).OfType<CnnClassifierTransformer>().Single().Network.Model.state_dict();
            CollectionAssert.AreEquivalent(x.Keys.ToList(), y.Keys.ToList());
            return x.Max(kv =>
            {
                var reference = y[kv.Key].to_type(TorchSharp.torch.ScalarType.Float64);
                double difference = (kv.Value.to_type(TorchSharp.torch.ScalarType.Float64) - reference).abs().max().item<double>();
                double scale = relative ? Math.Max(reference.abs().max().item<double>(), 1e-12) : 1;
                return difference / scale;
            });
        }
        finally
        {
            foreach (var stage in CnnPipelineFile.Stages(first).Concat(CnnPipelineFile.Stages(second)).OfType<IDisposable>()) stage.Dispose();
        }
    }
}
