namespace Cnn.MLNet.Imaging;

/// <summary>
/// The crop sampling of torchvision's <c>RandomResizedCrop.get_params</c>, driven by a seeded <see cref="Random"/> so runs
/// are reproducible: up to 10 attempts at a crop whose area is a uniform fraction of the image in [minScale, maxScale] and
/// whose aspect ratio is log-uniform in [minRatio, maxRatio]; if none fits, a center crop clamped to the ratio range.
/// </summary>
public static class RandomResizedCrop
{
    /// <summary>Samples a crop of a <paramref name="width"/>×<paramref name="height"/> image.</summary>
    /// <param name="width">Image width in pixels.</param>
    /// <param name="height">Image height in pixels.</param>
    /// <param name="random">Random source; the same seed gives the same crops.</param>
    /// <param name="minScale">Smallest area fraction (torchvision default 0.08).</param>
    /// <param name="maxScale">Largest area fraction (default 1).</param>
    /// <param name="minRatio">Smallest aspect ratio w/h (default 3/4).</param>
    /// <param name="maxRatio">Largest aspect ratio w/h (default 4/3).</param>
    /// <returns>A crop that lies inside the image.</returns>
    public static CropRegion GetParameters(int width, int height, Random random,
        double minScale = 0.08, double maxScale = 1.0, double minRatio = 3.0 / 4.0, double maxRatio = 4.0 / 3.0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentNullException.ThrowIfNull(random);
        double area = (double)height * width;
        double logMin = Math.Log(minRatio), logMax = Math.Log(maxRatio);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double targetArea = area * (minScale + (maxScale - minScale) * random.NextDouble());
            double aspect = Math.Exp(logMin + (logMax - logMin) * random.NextDouble());
            // Python's round() rounds half to even, as Math.Round does by default.
            int w = (int)Math.Round(Math.Sqrt(targetArea * aspect));
            int h = (int)Math.Round(Math.Sqrt(targetArea / aspect));
            if (w > 0 && w <= width && h > 0 && h <= height)
            {
                int top = random.Next(0, height - h + 1);
                int left = random.Next(0, width - w + 1);
                return new CropRegion(top, left, h, w);
            }
        }
        // Fallback to a central crop.
        double inRatio = (double)width / height;
        int cw, ch;
        if (inRatio < minRatio)
        {
            cw = width;
            ch = (int)Math.Round(cw / minRatio);
        }
        else if (inRatio > maxRatio)
        {
            ch = height;
            cw = (int)Math.Round(ch * maxRatio);
        }
        else
        {
            cw = width;
            ch = height;
        }
        return new CropRegion((height - ch) / 2, (width - cw) / 2, ch, cw);
    }
}
