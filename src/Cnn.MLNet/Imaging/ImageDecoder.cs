using Microsoft.ML.Data;
using SkiaSharp;

namespace Cnn.MLNet.Imaging;

/// <summary>
/// Decodes encoded images (PNG, JPEG, GIF, BMP, WebP, ICO), image files and ML.NET <see cref="MLImage"/> values into an
/// 8-bit RGB or gray <see cref="DecodedImage"/>.
/// </summary>
/// <remarks>
/// <para>Conversions follow PIL, so results match torchvision's default loader (<c>Image.open(f).convert("RGB")</c>):
/// gray images are replicated to R = G = B; palette images are expanded through their palette; 16-bit images are reduced to
/// 8 bits by keeping the high byte (<c>v >> 8</c>; PIL instead clips 16-bit values above 255, which makes most 16-bit images
/// white). Alpha is dropped by default (<see cref="AlphaHandling.Drop"/>, as PIL's <c>convert("RGB")</c>), or blended on
/// white or black. No ICC color management and no EXIF orientation is applied (neither does PIL). For one output channel
/// the luminance is ITU-R 601-2, computed exactly as PIL's <c>convert("L")</c>:
/// <c>L = (R·19595 + G·38470 + B·7471 + 32768) >> 16</c> ≈ R·299/1000 + G·587/1000 + B·114/1000.</para>
/// <para>All methods are thread-safe as long as each thread uses its own <see cref="DecodedImage"/> target.</para>
/// </remarks>
public static class ImageDecoder
{
    /// <summary>
    /// The most pixels decoded from any image: PIL's decompression-bomb limit (twice <c>Image.MAX_IMAGE_PIXELS</c>, where PIL raises
    /// <c>DecompressionBombError</c>), 178,956,970 pixels, e.g. 13377×13377.
    /// </summary>
    public const long MaxImagePixels = 178_956_970;

    /// <summary>Images up to this many pixels (2048×2048) are decoded whatever their encoded size.</summary>
    public const long SmallImagePixels = 1L << 22;

    /// <summary>
    /// Pixels per encoded byte beyond which a header's size is refused before anything is allocated: a 1-bit PNG at deflate's
    /// largest ratio (8 pixels a byte × 1032), about the densest the supported formats reach for real content.
    /// </summary>
    public const long MaxPixelsPerEncodedByte = 8 * 1032;

    /// <summary>
    /// The most pixels that <paramref name="encodedLength"/> encoded bytes may decode to: <see cref="SmallImagePixels"/> for any
    /// image, more in proportion to the encoded size (<see cref="MaxPixelsPerEncodedByte"/>), never more than <see cref="MaxImagePixels"/>.
    /// A header claiming more (a damaged header or a decompression bomb, e.g. 100000×100000 in a few bytes) is refused before the
    /// pixel buffer is allocated.
    /// </summary>
    /// <param name="encodedLength">The size of the encoded image in bytes.</param>
    public static long MaxPixels(long encodedLength) =>
        Math.Min(MaxImagePixels, Math.Max(SmallImagePixels, encodedLength * MaxPixelsPerEncodedByte));

    /// <summary>Decodes an encoded image (the bytes of a PNG, JPEG, … file).</summary>
    /// <param name="encoded">The encoded bytes.</param>
    /// <param name="channels">1 for gray (luminance), 3 for RGB.</param>
    /// <param name="source">Name used in errors, e.g. the file path or <c>row 12</c>.</param>
    /// <param name="alpha">How to treat transparency.</param>
    /// <param name="into">Image to decode into (its buffers are reused); a new one when null.</param>
    /// <returns><paramref name="into"/>, or a new image.</returns>
    /// <exception cref="ImageDecodeException">The bytes are empty, not a supported format, truncated or corrupt, or the header claims more
    /// pixels than <see cref="MaxPixels"/> allows for their length.</exception>
    public static unsafe DecodedImage Decode(ReadOnlySpan<byte> encoded, int channels, string source,
        AlphaHandling alpha = AlphaHandling.Drop, DecodedImage? into = null)
    {
        CheckChannels(channels);
        into ??= new DecodedImage();
        if (encoded.IsEmpty) throw new ImageDecodeException(source, "the data is empty (0 bytes).");
        fixed (byte* start = encoded)
        {
            using var data = SKData.Create((IntPtr)start, encoded.Length);
            if (data is null) throw new ImageDecodeException(source, "could not wrap the encoded bytes.");
            var stream = new SKMemoryStream(data);
            using var codec = SKCodec.Create(stream, out SKCodecResult created);
            if (codec is null)
            {
                stream.Dispose();
                throw new ImageDecodeException(source, created switch
                {
                    SKCodecResult.IncompleteInput => "the data is truncated (incomplete image header).",
                    SKCodecResult.Unimplemented or SKCodecResult.InvalidInput or SKCodecResult.Success =>
                        "not a supported image format (PNG, JPEG, GIF, BMP, WebP or ICO expected) or the header is corrupt.",
                    _ => $"the image header is invalid ({created}).",
                });
            }
            int width = codec.Info.Width, height = codec.Info.Height;
            if (width <= 0 || height <= 0) throw new ImageDecodeException(source, $"invalid image size {width}x{height}.");
            long pixelLimit = MaxPixels(encoded.Length);
            if ((long)width * height > pixelLimit)
                throw new ImageDecodeException(source,
                    $"the header claims {width}x{height} pixels, more than {encoded.Length} encoded bytes can hold (at most {pixelLimit} pixels): " +
                    "a damaged header or a decompression bomb; nothing was decoded.");
            long rgbaLength = (long)width * height * 4;
            if (into.Scratch.Length < rgbaLength) into.Scratch = new byte[rgbaLength];
            // Straight (unpremultiplied) RGBA without a color space: raw stored values, no color management, as PIL.
            var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
            SKCodecResult decoded;
            fixed (byte* pixels = into.Scratch)
                decoded = codec.GetPixels(info, (IntPtr)pixels);
            if (decoded != SKCodecResult.Success)
            {
                throw new ImageDecodeException(source, decoded switch
                {
                    SKCodecResult.IncompleteInput => "the image data is truncated (file cut short).",
                    SKCodecResult.ErrorInInput => "the image data is corrupt.",
                    SKCodecResult.InvalidConversion => $"its pixel format ({codec.Info.ColorType}) cannot be converted to RGBA.",
                    _ => $"decoding failed ({decoded}).",
                });
            }
            ConvertRgba(into.Scratch.AsSpan(0, (int)rgbaLength), width, height, bgra: false, channels, alpha, into);
            return into;
        }
    }

    /// <summary>Decodes the encoded bytes of an ML.NET <c>LoadRawImageBytes</c> column value.</summary>
    /// <inheritdoc cref="Decode(ReadOnlySpan{byte}, int, string, AlphaHandling, DecodedImage?)"/>
    public static DecodedImage Decode(VBuffer<byte> encoded, int channels, string source,
        AlphaHandling alpha = AlphaHandling.Drop, DecodedImage? into = null)
    {
        if (encoded.IsDense) return Decode(encoded.GetValues(), channels, source, alpha, into);
        var dense = new byte[encoded.Length];
        encoded.CopyTo(dense);
        return Decode(dense, channels, source, alpha, into);
    }

    /// <summary>Reads and decodes an image file.</summary>
    /// <param name="path">The image file; it is named in every error.</param>
    /// <param name="channels">1 for gray (luminance), 3 for RGB.</param>
    /// <param name="alpha">How to treat transparency.</param>
    /// <param name="into">Image to decode into (its buffers are reused); a new one when null.</param>
    /// <exception cref="ImageDecodeException">The file is missing, unreadable, not an image, truncated or corrupt.</exception>
    public static DecodedImage DecodeFile(string path, int channels, AlphaHandling alpha = AlphaHandling.Drop, DecodedImage? into = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        CheckChannels(channels);
        into ??= new DecodedImage();
        int length;
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
            long size = RandomAccess.GetLength(handle);
            if (size > Array.MaxLength) throw new ImageDecodeException(path, $"the file is too large ({size} bytes).");
            length = (int)size;
            if (into.FileBuffer.Length < length) into.FileBuffer = new byte[length];
            int read = 0;
            while (read < length)
            {
                int n = RandomAccess.Read(handle, into.FileBuffer.AsSpan(read, length - read), read);
                if (n == 0) break;
                read += n;
            }
            length = read;
        }
        catch (FileNotFoundException ex) { throw new ImageDecodeException(path, "the file does not exist.", ex); }
        catch (DirectoryNotFoundException ex) { throw new ImageDecodeException(path, "the folder does not exist.", ex); }
        catch (UnauthorizedAccessException ex) { throw new ImageDecodeException(path, "access denied: " + ex.Message, ex); }
        catch (IOException ex) { throw new ImageDecodeException(path, "the file cannot be read: " + ex.Message, ex); }
        return Decode(into.FileBuffer.AsSpan(0, length), channels, path, alpha, into);
    }

    /// <summary>
    /// Converts an ML.NET <see cref="MLImage"/> (what <c>LoadImages</c> produces; BGRA32 or RGBA32) to RGB or gray.
    /// </summary>
    /// <remarks>The stored pixel values are used as they are. ML.NET's own decoder premultiplies alpha, so translucent pixels of
    /// images loaded by <c>LoadImages</c> arrive already blended on black; decode the raw bytes or the file instead when
    /// transparent images must match PIL exactly.</remarks>
    /// <param name="image">The image; not disposed.</param>
    /// <param name="channels">1 for gray (luminance), 3 for RGB.</param>
    /// <param name="source">Name used in errors, e.g. <c>row 12</c>.</param>
    /// <param name="alpha">How to treat transparency.</param>
    /// <param name="into">Image to convert into (its buffers are reused); a new one when null.</param>
    /// <exception cref="ImageDecodeException">The image is disposed, empty or has an unsupported pixel format.</exception>
    public static DecodedImage FromMLImage(MLImage image, int channels, string source,
        AlphaHandling alpha = AlphaHandling.Drop, DecodedImage? into = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        CheckChannels(channels);
        into ??= new DecodedImage();
        int width, height;
        MLPixelFormat format;
        ReadOnlySpan<byte> pixels;
        try
        {
            width = image.Width;
            height = image.Height;
            format = image.PixelFormat;
            pixels = image.Pixels;
        }
        catch (Exception ex) when (ex is InvalidOperationException or ObjectDisposedException or NullReferenceException)
        {
            throw new ImageDecodeException(source, "the MLImage has no pixel data (disposed?): " + ex.Message, ex);
        }
        if (format is not (MLPixelFormat.Bgra32 or MLPixelFormat.Rgba32))
            throw new ImageDecodeException(source, $"unsupported MLImage pixel format {format} (BGRA32 or RGBA32 expected).");
        if (width <= 0 || height <= 0 || pixels.Length < (long)width * height * 4)
            throw new ImageDecodeException(source, $"the MLImage buffer ({pixels.Length} bytes) does not hold {width}x{height} 32-bit pixels.");
        ConvertRgba(pixels[..(width * height * 4)], width, height, format == MLPixelFormat.Bgra32, channels, alpha, into);
        return into;
    }

    /// <summary>Converts raw interleaved 8-bit pixels (1 = gray, 3 = RGB, 4 = RGBA) to the requested channel count.</summary>
    /// <param name="pixels">Row-major pixels, <paramref name="sourceChannels"/> bytes each.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    /// <param name="sourceChannels">1, 3 or 4.</param>
    /// <param name="channels">1 for gray (luminance), 3 for RGB.</param>
    /// <param name="alpha">How to treat transparency when <paramref name="sourceChannels"/> is 4.</param>
    /// <param name="into">Image to write into (its buffers are reused); a new one when null.</param>
    public static DecodedImage FromPixels(ReadOnlySpan<byte> pixels, int width, int height, int sourceChannels, int channels,
        AlphaHandling alpha = AlphaHandling.Drop, DecodedImage? into = null)
    {
        CheckChannels(channels);
        if (sourceChannels is not (1 or 3 or 4)) throw new ArgumentOutOfRangeException(nameof(sourceChannels), sourceChannels, "Source channels must be 1, 3 or 4.");
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        long expected = (long)width * height * sourceChannels;
        if (pixels.Length != expected)
            throw new ArgumentException($"Expected {expected} bytes for {width}x{height}x{sourceChannels} pixels, got {pixels.Length}.", nameof(pixels));
        into ??= new DecodedImage();
        if (sourceChannels == 4)
        {
            ConvertRgba(pixels, width, height, bgra: false, channels, alpha, into);
        }
        else if (sourceChannels == channels)
        {
            pixels.CopyTo(into.Reset(width, height, channels));
        }
        else if (sourceChannels == 1)
        {
            var target = into.Reset(width, height, 3);
            for (int i = 0, o = 0; i < pixels.Length; i++, o += 3)
                target[o] = target[o + 1] = target[o + 2] = pixels[i];
        }
        else
        {
            var target = into.Reset(width, height, 1);
            for (int i = 0, o = 0; o < target.Length; i += 3, o++)
                target[o] = Luminance(pixels[i], pixels[i + 1], pixels[i + 2]);
        }
        return into;
    }

    /// <summary>ITU-R 601-2 luminance exactly as PIL computes it (<c>L24</c> in PIL's Convert.c).</summary>
    internal static byte Luminance(int r, int g, int b) => (byte)((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);

    /// <summary>PIL's rounded division by 255 (<c>DIV255</c>).</summary>
    private static int Div255(int v)
    {
        int t = v + 128;
        return ((t >> 8) + t) >> 8;
    }

    private static void ConvertRgba(ReadOnlySpan<byte> rgba, int width, int height, bool bgra, int channels, AlphaHandling alpha, DecodedImage into)
    {
        // rgba may alias into.Scratch, never into.Pixels: safe to write the target while reading the source.
        var target = into.Reset(width, height, channels);
        int ri = bgra ? 2 : 0, bi = bgra ? 0 : 2;
        int n = width * height;
        for (int p = 0, i = 0; p < n; p++, i += 4)
        {
            int r = rgba[i + ri], g = rgba[i + 1], b = rgba[i + bi];
            if (alpha != AlphaHandling.Drop)
            {
                int a = rgba[i + 3];
                if (a != 255)
                {
                    int background = alpha == AlphaHandling.CompositeOnWhite ? 255 * (255 - a) : 0;
                    r = Div255(r * a + background);
                    g = Div255(g * a + background);
                    b = Div255(b * a + background);
                }
            }
            if (channels == 3)
            {
                int o = p * 3;
                target[o] = (byte)r;
                target[o + 1] = (byte)g;
                target[o + 2] = (byte)b;
            }
            else
            {
                target[p] = Luminance(r, g, b);
            }
        }
    }

    private static void CheckChannels(int channels)
    {
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "Output channels must be 1 (gray) or 3 (RGB).");
    }
}
