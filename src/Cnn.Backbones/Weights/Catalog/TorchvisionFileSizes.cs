using System.Globalization;

namespace Cnn.Backbones.Weights.Catalog;

/// <summary>
/// torchvision's published size of each weights file (<c>meta["_file_size"]</c>, in MB), by file name: an embedded data file
/// (<c>torchvision_file_sizes.tsv</c>), since the reference torchvision 0.14.1 predates the field.
/// </summary>
internal static class TorchvisionFileSizes
{
    private const string ResourceName = "Cnn.Backbones.torchvision_file_sizes.tsv";

    private static readonly Lazy<IReadOnlyDictionary<string, double>> Sizes = new(Read);

    /// <summary>The size in MB of the file named <paramref name="fileName"/>, or null when torchvision publishes none.</summary>
    public static double? Of(string fileName) => Sizes.Value.TryGetValue(fileName, out double size) ? size : null;

    private static IReadOnlyDictionary<string, double> Read()
    {
        using var stream = typeof(TorchvisionFileSizes).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"The embedded resource {ResourceName} is missing from Cnn.Backbones.");
        using var reader = new StreamReader(stream);
        var sizes = new Dictionary<string, double>(StringComparer.Ordinal);
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var parts = line.Split('\t');
            sizes.Add(parts[0], double.Parse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture));
        }
        return sizes;
    }
}
