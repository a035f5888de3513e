using System.Diagnostics;
using System.IO.Compression;
using Cnn.Tests.Shared;

namespace Cnn.MLNet.Tests.Cli;

/// <summary>
/// <c>kill -9</c> in the middle of a run, then <c>--resume</c>: <c>cnn train</c> and <c>cnn distill</c> in a child process are
/// killed once a checkpoint exists, resumed from the checkpoint folder, and save exactly the network (byte for byte) of the
/// same run never interrupted.
/// </summary>
[TestClass]
[DoNotParallelize] // times a child process and compares same-seed runs
public sealed class KillAndResumeTests
{
    private static string Cnn => Path.Combine(AppContext.BaseDirectory, "cnn.dll");

    private static Process Start(IEnumerable<string> arguments)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Cnn);
        foreach (var a in arguments) info.ArgumentList.Add(a);
        info.Environment["OMP_NUM_THREADS"] = "1";
        return Process.Start(info)!;
    }

    private static string Run(IEnumerable<string> arguments)
    {
        using var process = Start(arguments);
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        Assert.IsTrue(process.WaitForExit(TimeSpan.FromMinutes(3)), "the run did not finish");
        Assert.AreEqual(0, process.ExitCode, stdout + stderr.Result);
        return stdout;
    }

    /// <summary>Starts the run, waits for its first checkpoint (mid-epoch), kills the process (SIGKILL) and returns the folder's checkpoints.</summary>
    private static IReadOnlyList<string> KillAfterFirstCheckpoint(IEnumerable<string> arguments, string checkpoints)
    {
        using var process = Start(arguments);
        _ = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        while (!Directory.Exists(checkpoints) || !Directory.EnumerateFiles(checkpoints).Any(f => f.EndsWith(".cnnckpt", StringComparison.Ordinal)))
        {
            if (process.HasExited) Assert.Fail("the run ended before it wrote a checkpoint: " + stderr.Result);
            Assert.IsLessThan(180, clock.Elapsed.TotalSeconds, "no checkpoint within 3 minutes");
            Thread.Sleep(20);
        }
        process.Kill(entireProcessTree: true); // SIGKILL: no code of the run gets to clean up
        process.WaitForExit();
        return Directory.GetFiles(checkpoints, "*.cnnckpt");
    }

    private static byte[] NetworkWeights(string modelFile)
    {
        using var zip = ZipFile.OpenRead(modelFile);
        var entry = zip.Entries.Single(e => e.FullName.EndsWith("network.safetensors", StringComparison.Ordinal));
        using var stream = entry.Open();
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    private static void KilledAndResumedEqualsUninterrupted(TempDirectory dir, string[] run)
    {
        string whole = dir.File("whole.zip"), resumed = dir.File("resumed.zip"), checkpoints = dir.File("checkpoints");
        Run([.. run, "--output", whole]);
        var left = KillAfterFirstCheckpoint([.. run, "--output", resumed, "--checkpoint-dir", checkpoints, "--checkpoint-every", "3"], checkpoints);
        Assert.IsNotEmpty(left);
        Assert.IsFalse(File.Exists(resumed), "the killed run saved no model");
        // What a save killed half-way leaves (a process that no longer runs): removed by the next checkpoint.
        string leftover = Path.Combine(checkpoints, $"checkpoint-0000-000001.cnnckpt.{int.MaxValue - 7}.{Guid.NewGuid():N}.tmp");
        File.WriteAllBytes(leftover, new byte[100]);
        string text = Run([.. run, "--output", resumed, "--checkpoint-dir", checkpoints, "--resume", checkpoints]);
        CollectionAssert.AreEqual(NetworkWeights(whole), NetworkWeights(resumed), "resumed network differs from the uninterrupted one: " + text);
        Assert.IsEmpty(Directory.GetFiles(checkpoints, "*.tmp*"), "no temporary file is left in the checkpoint folder");
    }

    [TestMethod]
    public void TrainKilledMidRunResumesToTheSameNetwork()
    {
        using var dir = new TempDirectory();
        KilledAndResumedEqualsUninterrupted(dir,
            ["train", "--precision", "float32", "--memory-format", "contiguous", "--model", "resnet18", "--image-size", "32", "--limit", "300", "--epochs", "2", "--batch-size", "16", "--seed", "1", "--mixup", "0.3", "-q"]);
    }

    [TestMethod]
    public void DistillKilledMidRunResumesToTheSameNetwork()
    {
        using var dir = new TempDirectory();
        string folder = dir.File("colours"), teacher = dir.File("teacher.zip");
        TrainEvalCommandTests.WriteColourFolder(folder, ["blue", "green", "red"], 24, seed: 4);
        Run(["train", "--precision", "float32", "--memory-format", "contiguous", "--model", "lenet5", "--data", folder, "--epochs", "1", "--image-size", "32", "--channels", "3", "-q", "--output", teacher]);
        KilledAndResumedEqualsUninterrupted(dir,
            ["distill", "--precision", "float32", "--memory-format", "contiguous", "--teacher", teacher, "--student", "resnet18", "--image-size", "32", "--data", folder, "--epochs", "2", "--batch-size", "8", "--seed", "2", "-q"]);
    }

    [TestMethod]
    public void ResumingWithOtherOptionsIsAClearError()
    {
        using var dir = new TempDirectory();
        string checkpoints = dir.File("checkpoints");
        string[] run = ["train", "--model", "lenet5", "--limit", "100", "--epochs", "1", "--batch-size", "16", "-q", "--checkpoint-dir", checkpoints];
        Run([.. run, "--output", dir.File("a.zip")]);
        string line = CliHost.FailOneLine(1, [.. run, "--lr", "0.01", "--output", dir.File("b.zip"), "--resume", checkpoints]);
        StringAssert.Contains(line, "is of another run");
        StringAssert.Contains(line, "option LearningRate");
        StringAssert.Contains(CliHost.FailOneLine(2, [.. run, "--resume", dir.File("nothing")]), "option --resume");
    }
}
