namespace Cnn.Benchmarks;

/// <summary>The one-line verdict each benchmark prints per goal of issue #35: the measured ratio against its goal.</summary>
internal static class Verdict
{
    /// <summary>"verdict: what = 1.03 (goal >= 1.00): met" for a ratio that should reach <paramref name="goal"/>.</summary>
    public static string AtLeast(string what, double ratio, double goal) =>
        $"verdict: {what} = {ratio:0.00} (goal >= {goal:0.00}): {(ratio >= goal ? "met" : "not met")}";

    /// <summary>"verdict: what = 1.04 (goal <= 1.10): met" for a ratio that should stay within <paramref name="goal"/>.</summary>
    public static string AtMost(string what, double ratio, double goal) =>
        $"verdict: {what} = {ratio:0.00} (goal <= {goal:0.00}): {(ratio <= goal ? "met" : "not met")}";
}
