using Microsoft.ML;
using Microsoft.ML.Data;
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

/// <summary>One image read from a data view row: a decoded image, encoded bytes, or a file path, plus where it came from.</summary>
public sealed class ImageValue
{
    private ImageValue(ImageColumnKind kind, DecodedPixels? pixels, byte[]? bytes, string? path, string origin)
    {
        Kind = kind;
        Pixels = pixels;
        Bytes = bytes;
        FilePath = path;
        Origin = origin;
    }

    /// <summary>What the value holds.</summary>
    public ImageColumnKind Kind { get; }

    /// <summary>A copy of the decoded image's pixels when <see cref="Kind"/> is <see cref="ImageColumnKind.Image"/>.</summary>
    public DecodedPixels? Pixels { get; }

    /// <summary>The encoded bytes when <see cref="Kind"/> is <see cref="ImageColumnKind.EncodedBytes"/>.</summary>
    public byte[]? Bytes { get; }

    /// <summary>The file path when <see cref="Kind"/> is <see cref="ImageColumnKind.Path"/>.</summary>
    public string? FilePath { get; }

    /// <summary>Where the image came from, for error messages (e.g. "row 17 of column 'Image'" or the file path).</summary>
    public string Origin { get; }

    /// <summary>Copies a decoded image's pixels (the <see cref="MLImage"/> itself is not kept, so its owner may dispose it).</summary>
    public static ImageValue FromImage(MLImage image, string origin)
        => new(ImageColumnKind.Image, new DecodedPixels(image.Width, image.Height, image.PixelFormat, image.Pixels.ToArray()), null, null, origin);

    /// <summary>Wraps encoded image bytes.</summary>
    public static ImageValue FromBytes(byte[] bytes, string origin) => new(ImageColumnKind.EncodedBytes, null, bytes, null, origin);

    /// <summary>Wraps an image file path.</summary>
    public static ImageValue FromPath(string path) => new(ImageColumnKind.Path, null, null, path, path);
}

/// <summary>A copy of an <see cref="MLImage"/>'s pixels: 32 bits per pixel in <paramref name="Format"/> order, row-major.</summary>
/// <param name="Width">Width in pixels.</param>
/// <param name="Height">Height in pixels.</param>
/// <param name="Format">Byte order of each pixel (BGRA or RGBA).</param>
/// <param name="Data">Width × Height × 4 bytes.</param>
public sealed record DecodedPixels(int Width, int Height, MLPixelFormat Format, byte[] Data);

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

    /// <summary>Creates a delegate that reads the current row's image from <paramref name="row"/>.</summary>
    public static Func<ImageValue> CreateReader(DataViewRow row, DataViewSchema.Column column)
    {
        string name = column.Name;
        switch (KindOf(column))
        {
            case ImageColumnKind.Image:
            {
                var getter = row.GetGetter<MLImage>(column);
                return () =>
                {
                    MLImage image = null!;
                    getter(ref image);
                    if (image is null)
                        throw new InvalidDataException($"Row {row.Position}, column '{name}': the image is missing (LoadImages could not read the file?).");
                    return ImageValue.FromImage(image, image.Tag is { Length: > 0 } tag ? tag : $"row {row.Position} of column '{name}'");
                };
            }
            case ImageColumnKind.EncodedBytes:
            {
                var getter = row.GetGetter<VBuffer<byte>>(column);
                return () =>
                {
                    VBuffer<byte> buffer = default;
                    getter(ref buffer);
                    if (buffer.Length == 0)
                        throw new InvalidDataException($"Row {row.Position}, column '{name}': the image bytes are empty.");
                    return ImageValue.FromBytes(buffer.DenseValues().ToArray(), $"row {row.Position} of column '{name}'");
                };
            }
            default:
            {
                var getter = row.GetGetter<ReadOnlyMemory<char>>(column);
                return () =>
                {
                    ReadOnlyMemory<char> text = default;
                    getter(ref text);
                    if (text.IsEmpty)
                        throw new InvalidDataException($"Row {row.Position}, column '{name}': the image path is empty.");
                    return ImageValue.FromPath(text.ToString());
                };
            }
        }
    }
}
