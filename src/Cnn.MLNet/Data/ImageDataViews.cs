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

/// <summary>Turns in-memory data sets (Fashion-MNIST, image folders) into ML.NET data views.</summary>
public static class ImageDataViews
{
    /// <summary>
    /// A lazy data view with columns <c>Image</c> (encoded bytes: files are read, raw pixels are PNG-encoded, on each pass)
    /// and <c>Label</c> (the class name).
    /// </summary>
    public static IDataView ToDataView(MLContext mlContext, ImageDataset dataset)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(dataset);
        return mlContext.Data.LoadFromEnumerable(Rows(dataset));
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
