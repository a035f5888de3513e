namespace Cnn.MLNet.Data;

/// <summary>
/// A folder-per-class image collection, as torchvision's <c>ImageFolder</c>: <c>root/&lt;class&gt;/**/&lt;image&gt;</c>. Class
/// names are the subfolder names sorted ordinally (label = index); images are found recursively and listed in ordinal path
/// order, so the same folder always gives the same samples and labels.
/// </summary>
public sealed class ImageFolderDataset : ImageDataset
{
    /// <summary>File extensions recognized as images by default (case-insensitive).</summary>
    public static IReadOnlyList<string> DefaultExtensions { get; } = [".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"];

    private ImageFolderDataset(string root, IReadOnlyList<ImageSample> samples, IReadOnlyList<string> classNames)
        : base(samples, classNames)
    {
        Root = root;
    }

    /// <summary>The scanned root folder (full path).</summary>
    public string Root { get; }

    /// <summary>Scans <paramref name="root"/>: one subfolder per class, image files anywhere below it.</summary>
    /// <param name="root">The root folder.</param>
    /// <param name="extensions">Image extensions (with dot, case-insensitive); <see cref="DefaultExtensions"/> when null.</param>
    /// <exception cref="DirectoryNotFoundException">The root folder does not exist.</exception>
    /// <exception cref="InvalidDataException">There are fewer than two class folders, or a class folder holds no image; the message names them.</exception>
    public static ImageFolderDataset Scan(string root, IEnumerable<string>? extensions = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        string full = Path.GetFullPath(root);
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"Image folder '{full}' does not exist.");
        var allowed = new HashSet<string>((extensions ?? DefaultExtensions).Select(e => e.StartsWith('.') ? e : "." + e), StringComparer.OrdinalIgnoreCase);

        var classes = Directory.EnumerateDirectories(full)
            .Select(Path.GetFileName)
            .OfType<string>()
            .Where(n => !n.StartsWith('.'))
            .OrderBy(n => n, StringComparer.Ordinal)
            .ToList();
        if (classes.Count == 0)
            throw new InvalidDataException($"Image folder '{full}' has no class subfolders. Expected one subfolder per class, e.g. '{full}/cat/1.jpg' and '{full}/dog/2.jpg'.");
        if (classes.Count == 1)
            throw new InvalidDataException($"Image folder '{full}' has a single class folder ('{classes[0]}'); classification needs at least two classes.");

        var samples = new List<ImageSample>();
        var empty = new List<string>();
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = false, AttributesToSkip = FileAttributes.Hidden | FileAttributes.System };
        for (int label = 0; label < classes.Count; label++)
        {
            string folder = Path.Combine(full, classes[label]);
            var files = Directory.EnumerateFiles(folder, "*", options)
                .Where(f => allowed.Contains(Path.GetExtension(f)))
                .OrderBy(f => f, StringComparer.Ordinal)
                .ToList();
            if (files.Count == 0) empty.Add(classes[label]);
            foreach (var file in files) samples.Add(ImageSample.FromFile(file, label));
        }
        if (empty.Count > 0)
            throw new InvalidDataException($"Image folder '{full}': class folder(s) {string.Join(", ", empty.Select(e => $"'{e}'"))} contain no image " +
                                           $"({string.Join(" ", allowed.Order(StringComparer.Ordinal))}). Add images or remove the folder(s).");
        return new ImageFolderDataset(full, samples, classes);
    }
}
