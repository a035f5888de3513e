using Cnn.MLNet.Imaging;
using Microsoft.ML;

namespace Cnn.MLNet.Data;

/// <summary>One row of <see cref="ImageDataViews.ToDataView"/>: encoded image bytes and the class name.</summary>
public sealed class EncodedImageRow
{
    /// <summary>Encoded image (PNG, JPEG, …), as <c>LoadRawImageBytes</c> would produce.</summary>
    public byte[] Image { get; set; } = Array.Empty<byte>();

    /// <summary>Class name; map it to a key with <c>MapValueToKey("Label")</c>.</summary>
    public string Label { get; set; } = "";
}

/// <summary>One row of <see cref="ImageDataViews.ToDataView"/> for images in files: the path and the class name.</summary>
public sealed class ImagePathRow
{
    /// <summary>Path of the image file, as a text image column (the trainer and the transformers read the file).</summary>
    public string Image { get; set; } = "";

    /// <summary>Class name; map it to a key with <c>MapValueToKey("Label")</c>.</summary>
    public string Label { get; set; } = "";
}

/// <summary>Turns in-memory data sets (Fashion-MNIST, image folders) into ML.NET data views.</summary>
public static class ImageDataViews
{
    /// <summary>
    /// A lazy data view with columns <c>Image</c> and <c>Label</c> (the class name). When every sample is a file (an image
    /// folder), <c>Image</c> holds the paths, so an image that cannot be decoded is named by its path; otherwise it holds encoded
    /// bytes (raw pixels are PNG-encoded on each pass).
    /// </summary>
    public static IDataView ToDataView(MLContext mlContext, ImageDataset dataset)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(dataset);
        if (dataset.Samples.Count > 0 && dataset.Samples.All(s => s.Kind == ImageSampleKind.File))
            return mlContext.Data.LoadFromEnumerable(dataset.Samples.Select(s => new ImagePathRow { Image = s.Path!, Label = dataset.ClassNames[s.Label] }));
        return mlContext.Data.LoadFromEnumerable(Rows(dataset));
    }

    /// <summary>
    /// <c>MapValueToKey</c> whose keys follow <paramref name="classNames"/> (key k + 1 = class k), whatever order the rows come in:
    /// a dataset's own label order (Fashion-MNIST's 0 = T-shirt/top … 9 = Ankle boot; an image folder's sorted class folders),
    /// or a teacher's. Names it does not list, and empty strings, map to key 0 (missing).
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="classNames">The class names in key order.</param>
    /// <param name="outputColumnName">The key column to produce. Default <c>Label</c>.</param>
    /// <param name="inputColumnName">The text column of class names; null uses <paramref name="outputColumnName"/>.</param>
    public static Microsoft.ML.Transforms.ValueToKeyMappingEstimator MapLabelsToKeys(MLContext mlContext, IReadOnlyList<string> classNames,
        string outputColumnName = "Label", string? inputColumnName = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(classNames);
        var keys = mlContext.Data.LoadFromEnumerable(classNames.Select(n => new KeyRow { Value = n }));
        return mlContext.Transforms.Conversion.MapValueToKey(outputColumnName, inputColumnName, keyData: keys);
    }

    private sealed class KeyRow
    {
        public string Value { get; set; } = "";
    }

    private static IEnumerable<EncodedImageRow> Rows(ImageDataset dataset)
    {
        foreach (var sample in dataset.Samples)
            yield return new EncodedImageRow { Image = Encode(sample), Label = dataset.ClassNames[sample.Label] };
    }

    /// <summary>The encoded bytes of a sample (file contents, the bytes themselves, or PNG of raw pixels).</summary>
    public static byte[] Encode(ImageSample sample) => sample.Kind switch
    {
        ImageSampleKind.File => File.ReadAllBytes(sample.Path!),
        ImageSampleKind.Encoded => sample.Data.ToArray(),
        ImageSampleKind.Pixels => ImageEncoder.EncodePng(sample.Data.Span, sample.Width, sample.Height, sample.SourceChannels),
        _ => EncodeDecoded(sample),
    };

    private static byte[] EncodeDecoded(ImageSample sample)
    {
        var image = sample.Decode(3);
        return ImageEncoder.EncodePng(image.Pixels, image.Width, image.Height, 3);
    }
}
