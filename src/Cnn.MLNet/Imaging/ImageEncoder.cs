using SkiaSharp;

namespace Cnn.MLNet.Imaging;

/// <summary>Encodes raw 8-bit pixels as PNG (lossless), e.g. to feed in-memory data sets to ML.NET's image columns.</summary>
public static class ImageEncoder
{
    /// <summary>PNG bytes of row-major interleaved pixels with 1 (gray), 3 (RGB) or 4 (RGBA) channels.</summary>
    public static unsafe byte[] EncodePng(ReadOnlySpan<byte> pixels, int width, int height, int channels)
    {
        if (width < 1 || height < 1) throw new ArgumentOutOfRangeException(nameof(width), $"Image size must be positive, got {width}x{height}.");
        if (channels is not (1 or 3 or 4)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "Pixels must have 1, 3 or 4 channels.");
        if (pixels.Length != (long)width * height * channels)
            throw new ArgumentException($"Expected {(long)width * height * channels} bytes for {width}x{height}x{channels}, got {pixels.Length}.", nameof(pixels));
        var colorType = channels == 1 ? SKColorType.Gray8 : SKColorType.Rgba8888;
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, colorType, channels == 1 ? SKAlphaType.Opaque : SKAlphaType.Unpremul));
        var destination = new Span<byte>((void*)bitmap.GetPixels(), bitmap.ByteCount);
        if (channels is 1 or 4)
        {
            pixels.CopyTo(destination);
        }
        else
        {
            for (int i = 0, j = 0; i < pixels.Length; i += 3, j += 4)
            {
                destination[j] = pixels[i];
                destination[j + 1] = pixels[i + 1];
                destination[j + 2] = pixels[i + 2];
                destination[j + 3] = 255;
            }
        }
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100)
            ?? throw new InvalidOperationException($"SkiaSharp could not encode a {width}x{height}x{channels} image as PNG.");
        return data.ToArray();
    }
}
