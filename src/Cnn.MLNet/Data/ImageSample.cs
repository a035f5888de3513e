using Cnn.MLNet.Imaging;
using Microsoft.ML.Data;

namespace Cnn.MLNet.Data;

/// <summary>Where the pixels of an <see cref="ImageSample"/> come from.</summary>
public enum ImageSampleKind
{
    /// <summary>An image file on disk (<see cref="ImageSample.Path"/>).</summary>
    File = 0,

    /// <summary>Encoded image bytes in memory, e.g. a <c>LoadRawImageBytes</c> value (<see cref="ImageSample.Data"/>).</summary>
    Encoded = 1,

    /// <summary>Raw 8-bit interleaved pixels (<see cref="ImageSample.Data"/>, <see cref="ImageSample.Width"/>, <see cref="ImageSample.Height"/>, <see cref="ImageSample.SourceChannels"/>).</summary>
    Pixels = 2,

    /// <summary>An ML.NET <see cref="MLImage"/> (<see cref="ImageSample.Image"/>), e.g. from <c>LoadImages</c>; owned by the caller.</summary>
    MLImage = 3,
}

/// <summary>
/// One labelled image for the <see cref="ImageBatcher"/>: a file path, encoded bytes, raw pixels or an <see cref="MLImage"/>,
/// with a class index and a display name used in errors. Immutable; raw pixel samples can share one large buffer.
/// </summary>
public sealed class ImageSample
{
    private ImageSample(ImageSampleKind kind, int label, string name)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(label);
        Kind = kind;
        Label = label;
        Name = name;
    }

    /// <summary>Where the pixels come from.</summary>
    public ImageSampleKind Kind { get; }

    /// <summary>Class index (0-based).</summary>
    public int Label { get; }

    /// <summary>Name used in errors: the file path, or a row/sample name such as <c>train[17]</c>.</summary>
    public string Name { get; }

    /// <summary>The image file for <see cref="ImageSampleKind.File"/>; otherwise null.</summary>
    public string? Path { get; private init; }

    /// <summary>Encoded bytes (<see cref="ImageSampleKind.Encoded"/>) or raw pixels (<see cref="ImageSampleKind.Pixels"/>); otherwise empty.</summary>
    public ReadOnlyMemory<byte> Data { get; private init; }

    /// <summary>Width of raw pixels (<see cref="ImageSampleKind.Pixels"/>); otherwise 0.</summary>
    public int Width { get; private init; }

    /// <summary>Height of raw pixels (<see cref="ImageSampleKind.Pixels"/>); otherwise 0.</summary>
    public int Height { get; private init; }

    /// <summary>Channels of raw pixels: 1 (gray), 3 (RGB) or 4 (RGBA) (<see cref="ImageSampleKind.Pixels"/>); otherwise 0.</summary>
    public int SourceChannels { get; private init; }

    /// <summary>The ML.NET image (<see cref="ImageSampleKind.MLImage"/>); otherwise null.</summary>
    public MLImage? Image { get; private init; }

    /// <summary>A sample read from an image file.</summary>
    public static ImageSample FromFile(string path, int label)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return new ImageSample(ImageSampleKind.File, label, path) { Path = path };
    }

    /// <summary>A sample from encoded image bytes (PNG, JPEG, …).</summary>
    /// <param name="encoded">The encoded bytes; not copied.</param>
    /// <param name="label">Class index.</param>
    /// <param name="name">Name used in errors, e.g. <c>row 12</c>.</param>
    public static ImageSample FromEncoded(ReadOnlyMemory<byte> encoded, int label, string name) =>
        new(ImageSampleKind.Encoded, label, name ?? throw new ArgumentNullException(nameof(name))) { Data = encoded };

    /// <summary>A sample from raw 8-bit interleaved pixels.</summary>
    /// <param name="pixels">Row-major pixels, <paramref name="channels"/> bytes each; not copied.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    /// <param name="channels">1 (gray), 3 (RGB) or 4 (RGBA).</param>
    /// <param name="label">Class index.</param>
    /// <param name="name">Name used in errors, e.g. <c>train[17]</c>.</param>
    public static ImageSample FromPixels(ReadOnlyMemory<byte> pixels, int width, int height, int channels, int label, string name)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        if (channels is not (1 or 3 or 4)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "Raw pixels must have 1, 3 or 4 channels.");
        if (pixels.Length != (long)width * height * channels)
            throw new ArgumentException($"Sample '{name}': expected {(long)width * height * channels} bytes for {width}x{height}x{channels}, got {pixels.Length}.", nameof(pixels));
        return new ImageSample(ImageSampleKind.Pixels, label, name ?? throw new ArgumentNullException(nameof(name)))
        {
            Data = pixels, Width = width, Height = height, SourceChannels = channels,
        };
    }

    /// <summary>A sample from an ML.NET image; the caller keeps it alive (undisposed) while the sample is used.</summary>
    public static ImageSample FromImage(MLImage image, int label, string name)
    {
        ArgumentNullException.ThrowIfNull(image);
        return new ImageSample(ImageSampleKind.MLImage, label, name ?? throw new ArgumentNullException(nameof(name))) { Image = image };
    }

    /// <summary>Decodes the sample to <paramref name="channels"/> channels.</summary>
    /// <param name="channels">1 (gray) or 3 (RGB).</param>
    /// <param name="alpha">How transparency is handled.</param>
    /// <param name="into">Image to decode into (its buffers are reused); a new one when null.</param>
    /// <exception cref="ImageDecodeException">The image cannot be read or decoded; the message names the sample.</exception>
    public DecodedImage Decode(int channels, AlphaHandling alpha = AlphaHandling.Drop, DecodedImage? into = null) => Kind switch
    {
        ImageSampleKind.File => ImageDecoder.DecodeFile(Path!, channels, alpha, into),
        ImageSampleKind.Encoded => ImageDecoder.Decode(Data.Span, channels, Name, alpha, into),
        ImageSampleKind.Pixels => ImageDecoder.FromPixels(Data.Span, Width, Height, SourceChannels, channels, alpha, into),
        ImageSampleKind.MLImage => ImageDecoder.FromMLImage(Image!, channels, Name, alpha, into),
        _ => throw new InvalidOperationException($"Unknown sample kind {Kind}."),
    };

    /// <inheritdoc/>
    public override string ToString() => $"{Name} (label {Label})";
}
