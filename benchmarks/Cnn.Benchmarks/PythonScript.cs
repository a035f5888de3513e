using System.Diagnostics;
using System.Globalization;

namespace Cnn.Benchmarks;

/// <summary>Runs a Python script (the PyTorch side of a comparison) and returns its trimmed standard output.</summary>
internal static class PythonScript
{
    /// <summary>The script's output, or null when <paramref name="python"/> is missing or the script fails (no torch installed).</summary>
    public static string? Run(string python, string script, params object[] arguments)
    {
        if (!File.Exists(python)) return null;
        string file = Path.Combine(Path.GetTempPath(), $"cnn-bench-{Guid.NewGuid():N}.py");
        File.WriteAllText(file, script);
        try
        {
            var info = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            info.ArgumentList.Add(file);
            foreach (var a in arguments) info.ArgumentList.Add(Convert.ToString(a, CultureInfo.InvariantCulture)!);
            using var process = Process.Start(info)!;
            var stderr = process.StandardError.ReadToEndAsync();
            string output = process.StandardOutput.ReadToEnd().Trim();
            process.WaitForExit();
            _ = stderr.Result;
            return process.ExitCode == 0 && output.Length > 0 ? output : null;
        }
        finally
        {
            File.Delete(file);
        }
    }
}
