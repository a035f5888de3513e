namespace Cnn.Cli.Inference;

/// <summary>A class-name file: one name per line, in class-index order.</summary>
internal static class LabelFile
{
    /// <summary>Reads the names; trailing blank lines are ignored and the count must equal <paramref name="classes"/>.</summary>
    public static IReadOnlyList<string> Read(string path, int classes)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"labels file '{path}' does not exist.", path);
        var lines = File.ReadAllLines(path).Select(l => l.TrimEnd('\r')).ToList();
        while (lines.Count > 0 && string.IsNullOrWhiteSpace(lines[^1])) lines.RemoveAt(lines.Count - 1);
        if (lines.Count != classes)
            throw new InvalidDataException($"labels file '{path}' has {lines.Count} names but the model has {classes} classes; give one name per class, one per line.");
        return lines;
    }
}
