using System.Diagnostics;

namespace Cnn.Tests.Shared;

/// <summary>
/// Runs the reference implementation (Debian's python3-torch / python3-torchvision) to generate expected values at test time.
/// The interpreter is <c>/usr/bin/python3</c> unless <c>CNN_REFERENCE_PYTHON</c> names another one.
/// </summary>
internal static class ReferencePython
{
    public static string Interpreter =>
        Environment.GetEnvironmentVariable("CNN_REFERENCE_PYTHON") is { Length: > 0 } configured ? configured : "/usr/bin/python3";

    /// <summary>Runs <paramref name="script"/> with the given arguments and returns its standard output; fails the test on a non-zero exit.</summary>
    public static string Run(string script, params string[] arguments)
    {
        string file = Path.Combine(Path.GetTempPath(), $"cnn-ref-{Guid.NewGuid():N}.py");
        File.WriteAllText(file, script);
        try
        {
            var info = new ProcessStartInfo(Interpreter)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            info.ArgumentList.Add(file);
            foreach (var argument in arguments) info.ArgumentList.Add(argument);
            info.Environment["OMP_NUM_THREADS"] = "1";
            info.Environment["PYTHONHASHSEED"] = "0";
            using var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {Interpreter}.");
            var stderr = process.StandardError.ReadToEndAsync();
            string stdout = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
                Assert.Fail($"Reference script failed (exit {process.ExitCode}) under {Interpreter}. Install the reference with " +
                            $"'apt-get install -y --no-install-recommends python3-torchvision'.\n{stderr.Result}");
            return stdout;
        }
        finally
        {
            File.Delete(file);
        }
    }
}

/// <summary>A temporary folder deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "cnn-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
