using System.Globalization;
using Cnn.MLNet.Data;

namespace Cnn.Cli.Data;

/// <summary>A labelled data set and a short description of where it came from, for progress lines.</summary>
/// <param name="Dataset">The samples and class names.</param>
/// <param name="Description">E.g. <c>Fashion-MNIST train (/usr/share/datasets/fashion-mnist)</c>.</param>
internal sealed record LabeledData(ImageDataset Dataset, string Description);

/// <summary>The data sets <c>cnn train</c> and <c>cnn eval</c> read: Fashion-MNIST (built in, or IDX files in a folder) or a folder
/// per class, optionally capped.</summary>
internal static class DataSources
{
    /// <summary>
    /// A Fashion-MNIST split: from <paramref name="folder"/> (IDX files) when given, else the folder named by <c>CNN_FASHION_MNIST</c>
    /// or Debian's (<see cref="FashionMnist.TryLoad"/>), else the tool's embedded sample (<see cref="FashionMnistSample"/>); at most
    /// <paramref name="limit"/> images, class-balanced.
    /// </summary>
    public static LabeledData FashionMnistPart(FashionMnistSplit split, int? limit, string? folder = null)
    {
        var data = folder is not null ? FashionMnist.Load(split, folder)
            : FashionMnist.TryLoad(split, out var installed) ? installed
            : FashionMnistSample.Load(split);
        string part = split == FashionMnistSplit.Train ? "train" : "test";
        string origin = data.Source == FashionMnistSource.Folder ? data.Folder! : "embedded subset";
        return new LabeledData(Limit(data, limit), $"Fashion-MNIST {part} ({origin})");
    }

    /// <summary>
    /// Whether <c>--data</c> names a folder of Fashion-MNIST IDX files (<c>train-</c>/<c>t10k-images-idx3-ubyte[.gz]</c> and
    /// labels) rather than a folder per class: then the train split trains and the t10k split tests, as without <c>--data</c>.
    /// </summary>
    public static bool IsIdxFolder(string? path) => path is not null && FashionMnist.IsAvailable(path);

    /// <summary>A folder with one subfolder per class (<see cref="ImageFolderDataset.Scan"/>); at most <paramref name="limit"/> images, class-balanced.</summary>
    public static LabeledData Folder(string path, int? limit)
    {
        var data = ImageFolderDataset.Scan(path);
        return new LabeledData(Limit(data, limit), data.Root);
    }

    /// <summary>
    /// The first <paramref name="limit"/> samples taken round-robin over the classes (each class in its own order), so any
    /// cap stays balanced; the data set itself when <paramref name="limit"/> is null or not smaller than it.
    /// </summary>
    public static ImageDataset Limit(ImageDataset data, int? limit)
    {
        if (limit is not { } n || n >= data.Count) return data;
        var rank = new int[data.ClassNames.Count];
        var picked = data.Samples
            .Select((sample, index) => (sample, index, rank: rank[sample.Label]++))
            .OrderBy(t => t.rank).ThenBy(t => t.sample.Label)
            .Take(n)
            .OrderBy(t => t.index)
            .Select(t => t.sample)
            .ToList();
        return new ImageDataset(picked, data.ClassNames);
    }

    /// <summary>"1,234" with invariant grouping.</summary>
    public static string Count(int n) => n.ToString("N0", CultureInfo.InvariantCulture);
}
