using System.Diagnostics;
using System.Text.RegularExpressions;
using Cnn.MLNet.Persistence;
using Cnn.MLNet.Scoring;
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

    /// <summary>Plain SGD (momentum 0.9, no weight decay, constant rate, no augmentation) on lenet5, which has no BatchNorm.</summary>
    private static string[] Train(int batch, string output, int epochs = 2) =>
        ["train", "--model", "lenet5", "--data", Folder, "--epochs", epochs.ToString(), "--batch-size", batch.ToString(), "--image-size", "32",
         "--opt", "sgd", "--weight-decay", "0", "--sched", "constant", "--lr", "0.05", "--augment", "off", "--val-split", "0", "--threads", "1",
         "--quiet", "--output", output];

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

    /// <summary>The largest absolute difference between the two saved networks' parameters and buffers.</summary>
    private static double MaxDifference(string a, string b)
    {
        var ml = new MLContext();
        var first = CnnPipelineFile.Load(ml, a, out _);
        var second = CnnPipelineFile.Load(ml, b, out _);
        try
        {
            var x = CnnPipelineFile.Stages(first).OfType<CnnClassifierTransformer>().Single().Network.Model.state_dict();
            var y = CnnPipelineFile.Stages(second).OfType<CnnClassifierTransformer>().Single().Network.Model.state_dict();
            CollectionAssert.AreEquivalent(x.Keys.ToList(), y.Keys.ToList());
            return x.Max(kv => (kv.Value.to_type(TorchSharp.torch.ScalarType.Float64) - y[kv.Key].to_type(TorchSharp.torch.ScalarType.Float64)).abs().max().item<double>());
        }
        finally
        {
            foreach (var stage in CnnPipelineFile.Stages(first).Concat(CnnPipelineFile.Stages(second)).OfType<IDisposable>()) stage.Dispose();
        }
    }
}
