using System.Text.Json;
using Cnn.Cli;

namespace Cnn.MLNet.Tests.Cli;

/// <summary>Runs <c>cnn</c> in-process and checks the one-line error contract.</summary>
internal static class CliHost
{
    public static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = CliApp.Run(args, stdout, stderr);
        return (exit, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Runs and asserts success; returns stdout.</summary>
    public static string Succeed(params string[] args)
    {
        var (exit, output, error) = Run(args);
        Assert.AreEqual(0, exit, $"cnn {string.Join(' ', args)} failed: {error}");
        return output;
    }

    /// <summary>Runs, asserts a non-zero exit with exactly one stderr line and no stack trace; returns that line.</summary>
    public static string FailOneLine(int expectedExit, params string[] args)
    {
        var (exit, _, error) = Run(args);
        Assert.AreEqual(expectedExit, exit, $"cnn {string.Join(' ', args)}: {error}");
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (expectedExit == 2)
        {
            // Usage errors print the reason and the usage line.
            Assert.AreEqual(2, lines.Length, error);
            StringAssert.StartsWith(lines[1], "usage: cnn ");
        }
        else
        {
            Assert.AreEqual(1, lines.Length, error);
        }
        Assert.IsFalse(error.Contains("   at ", StringComparison.Ordinal), "no stack trace: " + error);
        return lines[0];
    }

    /// <summary>Parses output of one JSON object per line.</summary>
    public static List<JsonElement> JsonLines(string output) =>
        output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => JsonDocument.Parse(line).RootElement.Clone())
            .ToList();

    public static float[] Floats(JsonElement array) => array.EnumerateArray().Select(v => v.GetSingle()).ToArray();

    /// <summary>Every value within <paramref name="relative"/> of the reference vector's largest magnitude.</summary>
    public static void AssertClose(float[] expected, float[] actual, double relative, string what)
    {
        Assert.AreEqual(expected.Length, actual.Length, what + ": length");
        double scale = expected.Max(v => Math.Abs((double)v));
        Assert.IsTrue(scale > 0, what + ": the reference is all zeros, which would prove nothing");
        for (int i = 0; i < expected.Length; i++)
            Assert.IsTrue(Math.Abs(expected[i] - actual[i]) <= relative * scale,
                $"{what}[{i}]: expected {expected[i]}, got {actual[i]} (tolerance {relative * scale:G3})");
    }
}
