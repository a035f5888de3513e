namespace Cnn.Backbones.Weights.Catalog;

/// <summary>
/// The 1000 ImageNet-1k class names in the order of a 1000-class classifier's outputs, as torchvision's weights list them
/// (<c>meta["categories"]</c>, torchvision's <c>_IMAGENET_CATEGORIES</c>; BSD-3-Clause). Shipped inside the library, so predicted
/// class indices can be named without a labels file.
/// </summary>
public static class ImageNetCategories
{
    private const string ResourceName = "Cnn.Backbones.imagenet_categories.txt";
    private static readonly Lazy<IReadOnlyList<string>> Lazy = new(Load);

    /// <summary>The class names; index <c>i</c> names output <c>i</c> (<c>Names[0]</c> is <c>"tench"</c>).</summary>
    public static IReadOnlyList<string> Names => Lazy.Value;

    private static IReadOnlyList<string> Load()
    {
        using var stream = typeof(ImageNetCategories).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"The embedded resource '{ResourceName}' is missing from {typeof(ImageNetCategories).Assembly.GetName().Name}.");
        using var reader = new StreamReader(stream);
        var names = new List<string>(1000);
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line.StartsWith('#')) continue;
            names.Add(line);
        }
        if (names.Count != 1000)
            throw new InvalidOperationException($"The embedded resource '{ResourceName}' lists {names.Count} ImageNet class names, not 1000.");
        return names.AsReadOnly();
    }
}
