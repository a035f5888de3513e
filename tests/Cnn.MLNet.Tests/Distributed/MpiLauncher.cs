using System.Diagnostics;

namespace Cnn.MLNet.Tests.Distributed;

/// <summary>
/// Starts the built <c>cnn.dll</c> in fresh processes: alone (<c>dotnet cnn.dll …</c>) or as N ranks under Open MPI's <c>mpirun</c>
/// on localhost (allowed as root, oversubscribed on small machines, shared memory without the single-copy mechanism that containers forbid).
/// </summary>
internal static class MpiLauncher
{
    public static string Cnn => Path.Combine(AppContext.BaseDirectory, "cnn.dll");

    /// <summary>The process of <c>mpirun -np <paramref name="ranks"/> dotnet cnn.dll <paramref name="arguments"/></c>, output redirected.</summary>
    public static Process StartRanks(int ranks, IReadOnlyList<string> arguments, string marker = "")
    {
        Assert.IsTrue(File.Exists("/usr/bin/mpirun"), "mpirun is missing: apt-get install -y --no-install-recommends openmpi-bin libopenmpi-dev");
        var info = Info("mpirun");
        info.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        info.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        info.Environment["CNN_MPI_TEST"] = marker;
        foreach (var a in new[] { "--oversubscribe", "--mca", "btl_vader_single_copy_mechanism", "none", "-x", "CNN_MPI_TEST", "-np", ranks.ToString(), "dotnet", Cnn })
            info.ArgumentList.Add(a);
        foreach (var a in arguments) info.ArgumentList.Add(a);
        return Process.Start(info)!;
    }

    /// <summary>Runs <c>dotnet cnn.dll</c> (or mpirun with <paramref name="ranks"/> &gt; 1) to the end; fails the test unless it exits 0.</summary>
    public static string Succeed(int ranks, params string[] arguments)
    {
        var (exit, output) = Run(ranks, arguments);
        Assert.AreEqual(0, exit, output);
        return output;
    }

    /// <summary>Runs <c>dotnet cnn.dll</c> (or mpirun with <paramref name="ranks"/> &gt; 1) to the end: its exit code and output.</summary>
    public static (int Exit, string Output) Run(int ranks, params string[] arguments)
    {
        using var process = ranks > 1 ? StartRanks(ranks, arguments) : Single(arguments);
        return Finish(process, TimeSpan.FromSeconds(120));
    }

    /// <summary>Waits for the end of <paramref name="process"/>; its exit code and its stdout then stderr.</summary>
    public static (int Exit, string Output) Finish(Process process, TimeSpan limit)
    {
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{process.StartInfo.FileName} did not end within {limit.TotalSeconds:0} s");
        }
        return (process.ExitCode, output.Result + error.Result);
    }

    private static Process Single(IReadOnlyList<string> arguments)
    {
        var info = Info("dotnet");
        info.ArgumentList.Add(Cnn);
        foreach (var a in arguments) info.ArgumentList.Add(a);
        return Process.Start(info)!;
    }

    private static ProcessStartInfo Info(string file) =>
        new(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
}
