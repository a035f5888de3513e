using System.Diagnostics;
using System.Globalization;
using System.Reflection;

namespace Cnn.Benchmarks;

/// <summary>
/// Runs this benchmark program again as a fresh child process (so what it measures, such as its peak resident set, is its own)
/// and returns the last line it printed.
/// </summary>
internal static class ChildProcess
{
    /// <summary>The child's last line of standard output.</summary>
    /// <exception cref="InvalidOperationException">The child failed (its exit code and standard error are in the message).</exception>
    public static string Run(params object[] arguments)
    {
        string self = Assembly.GetExecutingAssembly().Location;
        string host = Environment.ProcessPath ?? "dotnet";
        var info = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet") info.ArgumentList.Add(self);
        foreach (var a in arguments) info.ArgumentList.Add(Convert.ToString(a, CultureInfo.InvariantCulture)!);
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd().Trim();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"The child run ({string.Join(' ', arguments)}) failed with exit code {process.ExitCode}: {stderr.Result.Trim()}");
        return output.Split('\n')[^1];
    }
}
