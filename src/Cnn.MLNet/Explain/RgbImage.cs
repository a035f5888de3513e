using Cnn.MLNet.Imaging;

namespace Cnn.MLNet.Explain;

/// <summary>An 8-bit RGB picture: row-major interleaved pixels, 3 bytes each.</summary>
/// <param name="Width">Width in pixels.</param>
/// <param name="Height">Height in pixels.</param>
/// <param name="Pixels">R, G, B bytes, <c>Width · Height · 3</c> of them.</param>
public sealed record RgbImage(int Width, int Height, byte[] Pixels)
{
    /// <summary>The pixel at (<paramref name="x"/>, <paramref name="y"/>).</summary>
    public (byte R, byte G, byte B) this[int x, int y]
    {
        get
        {
            int i = (y * Width + x) * 3;
            return (Pixels[i], Pixels[i + 1], Pixels[i + 2]);
        }
    }

    /// <summary>The picture as PNG bytes (<see cref="ImageEncoder.EncodePng"/>).</summary>
    public byte[] ToPng() => ImageEncoder.EncodePng(Pixels, Width, Height, 3);

    /// <summary>Writes the picture to <paramref name="path"/> as PNG.</summary>
    public void SavePng(string path) => File.WriteAllBytes(path, ToPng());
}
