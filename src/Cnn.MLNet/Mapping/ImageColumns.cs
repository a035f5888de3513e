using Microsoft.ML;
using Microsoft.ML.Data;
using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using Microsoft.ML.Transforms.Image;

namespace Cnn.MLNet.Mapping;

/// <summary>How an image column holds its images.</summary>
public enum ImageColumnKind
{
    /// <summary>Decoded <see cref="MLImage"/> values, as <c>LoadImages</c> produces.</summary>
    Image,

    /// <summary>Encoded file bytes (PNG, JPEG, …) as a byte vector, as <c>LoadRawImageBytes</c> produces.</summary>
    EncodedBytes,

    /// <summary>A text column holding image file paths.</summary>
    Path,
}

/// <summary>Reads image values of any supported column kind from data view rows.</summary>
public static class ImageColumns
{
    /// <summary>
    /// The kind of <paramref name="column"/>, or an <see cref="ArgumentOutOfRangeException"/> naming the column, its type and the
    /// ML.NET transforms that produce a supported type.
    /// </summary>
    public static ImageColumnKind KindOf(DataViewSchema.Column column)
        => TryKindOf(column.Type) ?? throw new ArgumentOutOfRangeException(nameof(column),
            $"Column '{column.Name}' has type {column.Type}, which is not an image. Expected an image column " +
            "(mlContext.Transforms.LoadImages), encoded image bytes (mlContext.Transforms.LoadRawImageBytes) or a text column of image file paths.");

    /// <summary>The kind for a column type, or null when the type holds no images.</summary>
    public static ImageColumnKind? TryKindOf(DataViewType type) => type switch
    {
        ImageDataViewType => ImageColumnKind.Image,
        VectorDataViewType { ItemType: var item } when item == NumberDataViewType.Byte => ImageColumnKind.EncodedBytes,
        TextDataViewType => ImageColumnKind.Path,
        _ => null,
    };

    /// <summary>Finds the image column by name in a schema, with clear errors when it is missing or of the wrong type.</summary>
    public static DataViewSchema.Column Find(DataViewSchema schema, string name)
    {
        var column = schema.GetColumnOrNull(name) ?? throw new ArgumentOutOfRangeException(nameof(name),
            $"Input column '{name}' is missing. Available columns: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => c.Name))}. " +
            "Load images first, e.g. mlContext.Transforms.LoadImages(\"Image\", imageFolder, \"ImagePath\"), or set the image column name in the options.");
        KindOf(column);
        return column;
    }

    /// <summary>
    /// Creates a delegate that reads the current row's image from <paramref name="row"/> as an <see cref="ImageSample"/> with
    /// the label index the delegate is given. Decoded <see cref="MLImage"/> values are copied to raw pixels, so the
    /// sample does not depend on the image's owner keeping it alive.
    /// </summary>
    public static Func<int, ImageSample> CreateReader(DataViewRow row, DataViewSchema.Column column)
    {
        string name = column.Name;
        string Where() => $"row {row.Position} of column '{name}'";
        switch (KindOf(column))
        {
            case ImageColumnKind.Image:
            {
                var getter = row.GetGetter<MLImage>(column);
                return label =>
                {
                    MLImage image = null!;
                    getter(ref image);
                    if (image is null)
                        throw new ImageDecodeException(Where(), "the image is missing (LoadImages could not read the file?)");
                    string origin = image.Tag is { Length: > 0 } tag ? tag : Where();
                    var decoded = ImageDecoder.FromMLImage(image, 3, origin);
                    return ImageSample.FromPixels(decoded.Pixels.ToArray(), decoded.Width, decoded.Height, 3, label, origin);
                };
            }
            case ImageColumnKind.EncodedBytes:
            {
                var getter = row.GetGetter<VBuffer<byte>>(column);
                return label =>
                {
                    VBuffer<byte> buffer = default;
                    getter(ref buffer);
                    if (buffer.Length == 0)
                        throw new ImageDecodeException(Where(), "the image bytes are empty");
                    return ImageSample.FromEncoded(buffer.IsDense ? buffer.GetValues().ToArray() : buffer.DenseValues().ToArray(), label, Where());
                };
            }
            default:
            {
                var getter = row.GetGetter<ReadOnlyMemory<char>>(column);
                return label =>
                {
                    ReadOnlyMemory<char> text = default;
                    getter(ref text);
                    if (text.IsEmpty)
                        throw new ImageDecodeException(Where(), "the image path is empty");
                    return ImageSample.FromFile(text.ToString(), label);
                };
            }
        }
    }
}
