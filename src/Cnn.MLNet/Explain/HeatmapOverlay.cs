namespace Cnn.MLNet.Explain;

/// <summary>Colours a [0, 1] heatmap with a jet colour map and blends it over a picture.</summary>
public static class HeatmapOverlay
{
    /// <summary>
    /// The jet colour of <paramref name="value"/> (clamped to [0, 1]): dark blue at 0, through cyan, yellow, to dark red at 1
    /// (channel c = clamp(1.5 − |4v − k_c|) with k = 3, 2, 1 for red, green, blue, as Matplotlib's and OpenCV's jet).
    /// </summary>
    public static (byte R, byte G, byte B) Jet(float value)
    {
        float v = Math.Clamp(value, 0f, 1f);
        return (Channel(v, 3), Channel(v, 2), Channel(v, 1));
    }

    /// <summary>
    /// <c>(1 − alpha) · picture + alpha · jet(heatmap)</c> per pixel and channel, rounded.
    /// </summary>
    /// <param name="picture">The picture the heatmap belongs to.</param>
    /// <param name="heatmap">Values in [0, 1], row-major, one per pixel of <paramref name="picture"/>.</param>
    /// <param name="alpha">Weight of the colour map, in [0, 1].</param>
    /// <exception cref="ArgumentException">The heatmap does not have one value per pixel.</exception>
    public static RgbImage Blend(RgbImage picture, ReadOnlySpan<float> heatmap, double alpha = 0.5)
    {
        ArgumentNullException.ThrowIfNull(picture);
        if (heatmap.Length != picture.Width * picture.Height)
            throw new ArgumentException($"The heatmap has {heatmap.Length} values; the {picture.Width}x{picture.Height} picture needs {picture.Width * picture.Height}.", nameof(heatmap));
        if (!(alpha >= 0 && alpha <= 1)) throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "alpha must be in [0, 1].");
        var pixels = new byte[picture.Pixels.Length];
        for (int i = 0; i < heatmap.Length; i++)
        {
            var (r, g, b) = Jet(heatmap[i]);
            pixels[3 * i] = Mix(picture.Pixels[3 * i], r, alpha);
            pixels[3 * i + 1] = Mix(picture.Pixels[3 * i + 1], g, alpha);
            pixels[3 * i + 2] = Mix(picture.Pixels[3 * i + 2], b, alpha);
        }
        return new RgbImage(picture.Width, picture.Height, pixels);
    }

    private static byte Channel(float v, int centre) => (byte)Math.Round(255 * Math.Clamp(1.5f - Math.Abs(4 * v - centre), 0f, 1f));

    private static byte Mix(byte under, byte over, double alpha) => (byte)Math.Round((1 - alpha) * under + alpha * over);
}
