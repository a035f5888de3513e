using System.Text;

namespace Cnn.Backbones.Weights;

/// <summary>What <see cref="StateDictLoader.Load"/> matched, copied and skipped.</summary>
public sealed class WeightLoadReport
{
    internal WeightLoadReport(IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<ShapeMismatch> mismatches, int loaded)
    {
        MissingKeys = missing;
        UnexpectedKeys = unexpected;
        ShapeMismatches = mismatches;
        Loaded = loaded;
    }

    /// <summary>Module entries (parameters and buffers) that the file does not have; they keep their current values.</summary>
    public IReadOnlyList<string> MissingKeys { get; }

    /// <summary>File entries that the module does not have; they were ignored.</summary>
    public IReadOnlyList<string> UnexpectedKeys { get; }

    /// <summary>Entries present in both with different shapes; they were not copied.</summary>
    public IReadOnlyList<ShapeMismatch> ShapeMismatches { get; }

    /// <summary>The number of module entries that received the file's values (0 when a strict load failed).</summary>
    public int Loaded { get; }

    /// <summary>True when every module entry was loaded and the file had nothing extra.</summary>
    public bool IsComplete => MissingKeys.Count == 0 && UnexpectedKeys.Count == 0 && ShapeMismatches.Count == 0;

    /// <summary>A one-line summary followed by up to 10 names of each problem kind, e.g. for logs.</summary>
    public override string ToString() => Describe(10, Environment.NewLine);

    internal string Describe(int max, string separator)
    {
        var text = new StringBuilder();
        text.Append($"loaded {Loaded} tensors; {MissingKeys.Count} missing, {UnexpectedKeys.Count} unexpected, {ShapeMismatches.Count} shape mismatches");
        Append(text, "missing from the file", MissingKeys, max, separator);
        Append(text, "unexpected in the file", UnexpectedKeys, max, separator);
        Append(text, "shape mismatches", ShapeMismatches.Select(m => m.ToString()).ToList(), max, separator);
        return text.ToString();
    }

    private static void Append(StringBuilder text, string title, IReadOnlyList<string> items, int max, string separator)
    {
        if (items.Count == 0) return;
        text.Append(separator).Append(title).Append($" ({items.Count}): ").Append(string.Join(", ", items.Take(max)));
        if (items.Count > max) text.Append($", … and {items.Count - max} more");
    }
}
