namespace Cnn.MLNet.Imaging;

/// <summary>
/// A decoded 8-bit image in interleaved (HWC) layout with 1 (gray) or 3 (RGB) channels. The pixel buffer grows on demand
/// and is reused by later decodes into the same instance, so one instance per worker thread keeps memory flat.
/// Not thread-safe.
/// </summary>
public sealed class DecodedImage
{
    private byte[] _pixels = [];
    internal byte[] Scratch = []; // RGBA staging buffer reused by the decoder
    internal byte[] FileBuffer = []; // encoded-file staging buffer reused by the decoder

    /// <summary>Width in pixels.</summary>
    public int Width { get; private set; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; private set; }

    /// <summary>Channels per pixel: 1 (gray) or 3 (RGB, in R, G, B order).</summary>
    public int Channels { get; private set; }

    /// <summary>Bytes per row (<c>Width * Channels</c>).</summary>
    public int Stride => Width * Channels;

    /// <summary>The pixels, row-major, <see cref="Channels"/> bytes per pixel (<c>Height * Width * Channels</c> bytes).</summary>
    public Span<byte> Pixels => _pixels.AsSpan(0, Height * Width * Channels);

    /// <summary>Sets the size and channel count, growing the buffer if needed; the pixel contents are unspecified afterwards.</summary>
    /// <param name="width">Width in pixels (at least 1).</param>
    /// <param name="height">Height in pixels (at least 1).</param>
    /// <param name="channels">1 or 3.</param>
    /// <returns>The pixel span to fill.</returns>
    public Span<byte> Reset(int width, int height, int channels)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "Channels must be 1 or 3.");
        long length = (long)width * height * channels;
        if (length > Array.MaxLength) throw new ArgumentException($"Image {width}x{height}x{channels} is too large.");
        if (_pixels.Length < length) _pixels = new byte[length];
        Width = width;
        Height = height;
        Channels = channels;
        return Pixels;
    }

    /// <summary>
    /// A copy of <paramref name="image"/>'s pixels, alone in an array on the pinned object heap: for images kept for a whole run
    /// (<see cref="Data.DecodedImageCache"/>), which the garbage collector then never copies from generation to generation.
    /// </summary>
    internal static DecodedImage KeepCopy(DecodedImage image)
    {
        var pixels = image.Pixels;
        var kept = new DecodedImage { _pixels = GC.AllocateUninitializedArray<byte>(pixels.Length, pinned: true) };
        kept.Reset(image.Width, image.Height, image.Channels);
        pixels.CopyTo(kept._pixels);
        return kept;
    }

    /// <summary>Creates an image that holds a copy of <paramref name="pixels"/> (HWC, <paramref name="channels"/> bytes per pixel).</summary>
    public static DecodedImage FromPixels(ReadOnlySpan<byte> pixels, int width, int height, int channels)
    {
        var image = new DecodedImage();
        var target = image.Reset(width, height, channels);
        if (pixels.Length != target.Length)
            throw new ArgumentException($"Expected {target.Length} bytes for a {width}x{height} image with {channels} channel(s), got {pixels.Length}.", nameof(pixels));
        pixels.CopyTo(target);
        return image;
    }
}
