namespace Cnn.MLNet.Data;

/// <summary>Which part of Fashion-MNIST to load.</summary>
public enum FashionMnistSplit
{
    /// <summary>The training images (60,000 in the full set, 10,000 in the <c>cnn</c> tool's sample).</summary>
    Train = 0,

    /// <summary>The test images (10,000 in the full set, 2,000 in the <c>cnn</c> tool's sample).</summary>
    Test = 1,
}

/// <summary>Where loaded Fashion-MNIST data came from.</summary>
public enum FashionMnistSource
{
    /// <summary>IDX files in a folder (the Debian package's or one the caller named).</summary>
    Folder = 0,

    /// <summary>Streams given to <see cref="FashionMnist.FromStreams"/>, e.g. the seeded subset embedded in the <c>cnn</c> tool.</summary>
    Embedded = 1,
}

/// <summary>Fashion-MNIST images (28×28 gray, one byte per pixel) and labels as an <see cref="ImageDataset"/>.</summary>
public sealed class FashionMnistDataset : ImageDataset
{
    internal FashionMnistDataset(IdxArray images, IdxArray labels, FashionMnistSplit split, FashionMnistSource source, string? folder)
        : base(CreateSamples(images, labels, split), FashionMnist.ClassNames)
    {
        Images = images;
        Labels = labels;
        Part = split;
        Source = source;
        Folder = folder;
    }

    /// <summary>The images as an IDX array [N, 28, 28].</summary>
    public IdxArray Images { get; }

    /// <summary>The labels as an IDX array [N].</summary>
    public IdxArray Labels { get; }

    /// <summary>Training or test part.</summary>
    public FashionMnistSplit Part { get; }

    /// <summary>Folder files or streams (<see cref="FashionMnist.FromStreams"/>).</summary>
    public FashionMnistSource Source { get; }

    /// <summary>The folder read, when <see cref="Source"/> is <see cref="FashionMnistSource.Folder"/>; otherwise null.</summary>
    public string? Folder { get; }

    private static ImageSample[] CreateSamples(IdxArray images, IdxArray labels, FashionMnistSplit split)
    {
        string prefix = split == FashionMnistSplit.Train ? "fashion-mnist train" : "fashion-mnist test";
        if (images.Shape.Length != 3 || images.Shape[1] != 28 || images.Shape[2] != 28)
            throw new InvalidDataException($"{prefix} images must have shape [N, 28, 28], got [{string.Join(", ", images.Shape)}].");
        if (labels.Shape.Length != 1 || labels.Count != images.Count)
            throw new InvalidDataException($"{prefix}: {images.Count} images but labels have shape [{string.Join(", ", labels.Shape)}].");
        var samples = new ImageSample[images.Count];
        var memory = images.Data.AsMemory();
        for (int i = 0; i < samples.Length; i++)
        {
            int label = labels.Data[i];
            if (label >= FashionMnist.ClassNames.Count)
                throw new InvalidDataException($"{prefix}[{i}]: label {label} is not a Fashion-MNIST class (0-9).");
            samples[i] = ImageSample.FromPixels(memory.Slice(i * 784, 784), 28, 28, 1, label, $"{prefix}[{i}]");
        }
        return samples;
    }
}

/// <summary>
/// Loads Fashion-MNIST (Zalando, MIT license): from a folder with the four IDX files (<c>train-images-idx3-ubyte[.gz]</c>,
/// <c>train-labels-idx1-ubyte[.gz]</c>, <c>t10k-images-idx3-ubyte[.gz]</c>, <c>t10k-labels-idx1-ubyte[.gz]</c>) — the Debian
/// package <c>dataset-fashion-mnist</c> installs them in <see cref="DebianFolder"/> — or from streams
/// (<see cref="FromStreams"/>). This assembly carries no data: the <c>cnn</c> tool embeds a seeded, class-stratified sample.
/// </summary>
public static class FashionMnist
{
    /// <summary>Where Debian's <c>dataset-fashion-mnist</c> package installs the data.</summary>
    public const string DebianFolder = "/usr/share/datasets/fashion-mnist";

    /// <summary>Environment variable naming a folder to use instead of <see cref="DebianFolder"/>.</summary>
    public const string FolderVariable = "CNN_FASHION_MNIST";

    /// <summary>The ten class names; label i is <c>ClassNames[i]</c>.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>
    /// Loads a split. With <paramref name="folder"/> given, that folder must hold the files. Otherwise the folder named by
    /// <c>CNN_FASHION_MNIST</c> or else <see cref="DebianFolder"/> must have them (see <see cref="TryLoad"/>).
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">An explicitly given folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">The folder (given, or the default ones) lacks the split's files.</exception>
    /// <exception cref="InvalidDataException">A file is not valid Fashion-MNIST IDX data.</exception>
    public static FashionMnistDataset Load(FashionMnistSplit split, string? folder = null)
    {
        if (folder is not null)
        {
            if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Fashion-MNIST folder '{folder}' does not exist.");
            return LoadFolder(split, folder)
                ?? throw new FileNotFoundException($"Fashion-MNIST folder '{folder}' lacks {FilePrefix(split)}-images-idx3-ubyte[.gz] " +
                                                   $"and/or {FilePrefix(split)}-labels-idx1-ubyte[.gz].");
        }
        return TryLoad(split, out var found)
            ? found
            : throw new FileNotFoundException(
                $"Fashion-MNIST was not found: neither ${FolderVariable} nor {DebianFolder} holds {FilePrefix(split)}-images-idx3-ubyte[.gz] " +
                $"and {FilePrefix(split)}-labels-idx1-ubyte[.gz]. Install the Debian package dataset-fashion-mnist, download the four files " +
                $"from https://github.com/zalandoresearch/fashion-mnist into a folder and set {FolderVariable} to it, or pass the folder.");
    }

    /// <summary>
    /// Loads a split from the folder named by <c>CNN_FASHION_MNIST</c>, else <see cref="DebianFolder"/>; false when neither
    /// holds the split's files.
    /// </summary>
    /// <exception cref="InvalidDataException">A file is not valid Fashion-MNIST IDX data.</exception>
    public static bool TryLoad(FashionMnistSplit split, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out FashionMnistDataset? dataset)
    {
        foreach (var candidate in new[] { Environment.GetEnvironmentVariable(FolderVariable), DebianFolder })
            if (!string.IsNullOrWhiteSpace(candidate) && Directory.Exists(candidate) && LoadFolder(split, candidate) is { } found)
            {
                dataset = found;
                return true;
            }
        dataset = null;
        return false;
    }

    /// <summary>True when <paramref name="folder"/> holds the images and labels of both splits.</summary>
    public static bool IsAvailable(string folder) =>
        Directory.Exists(folder) && Enum.GetValues<FashionMnistSplit>().All(s => FindFile(folder, $"{FilePrefix(s)}-images-idx3-ubyte") is not null
                                                                              && FindFile(folder, $"{FilePrefix(s)}-labels-idx1-ubyte") is not null);

    /// <summary>
    /// Reads a split from IDX streams (gzip-compressed or not), e.g. resources embedded in an application.
    /// <paramref name="name"/> names the source in error messages.
    /// </summary>
    /// <exception cref="InvalidDataException">A stream is not valid Fashion-MNIST IDX data.</exception>
    public static FashionMnistDataset FromStreams(FashionMnistSplit split, Stream images, Stream labels, string name)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        string prefix = FilePrefix(split);
        return new FashionMnistDataset(IdxFile.Read(images, $"{name} {prefix}-images"), IdxFile.Read(labels, $"{name} {prefix}-labels"),
            split, FashionMnistSource.Embedded, null);
    }

    private static FashionMnistDataset? LoadFolder(FashionMnistSplit split, string folder)
    {
        string prefix = FilePrefix(split);
        string? images = FindFile(folder, $"{prefix}-images-idx3-ubyte");
        string? labels = FindFile(folder, $"{prefix}-labels-idx1-ubyte");
        if (images is null || labels is null) return null;
        return new FashionMnistDataset(IdxFile.Read(images), IdxFile.Read(labels), split, FashionMnistSource.Folder, folder);
    }

    private static string? FindFile(string folder, string name)
    {
        foreach (var candidate in new[] { name + ".gz", name })
        {
            string path = Path.Combine(folder, candidate);
            if (File.Exists(path)) return path;
        }
        return null;
    }

    private static string FilePrefix(FashionMnistSplit split) => split == FashionMnistSplit.Train ? "train" : "t10k";
}
