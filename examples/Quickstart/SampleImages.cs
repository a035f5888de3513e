using SkiaSharp;

namespace Cnn.Examples.Quickstart;

/// <summary>
/// Writes a small folder-per-class collection of colour PNGs (circles, squares and triangles of random colours, sizes and
/// positions on noisy backgrounds), so the quickstart runs anywhere with no download.
/// </summary>
internal static class SampleImages
{
    /// <summary>The generated classes, one subfolder each.</summary>
    public static readonly string[] Classes = ["circle", "square", "triangle"];

    /// <summary>Writes <paramref name="perClass"/> images of each class under <paramref name="root"/>/&lt;class&gt;/&lt;i&gt;.png.</summary>
    public static void Write(string root, int perClass, int size = 96, int seed = 0)
    {
        var random = new Random(seed);
        foreach (string name in Classes)
        {
            string folder = Path.Combine(root, name);
            Directory.CreateDirectory(folder);
            for (int i = 0; i < perClass; i++)
            {
                using var bitmap = new SKBitmap(size, size, SKColorType.Rgba8888, SKAlphaType.Premul);
                using (var canvas = new SKCanvas(bitmap))
                {
                    canvas.Clear(RandomColour(random, 150, 255));
                    using var noise = new SKPaint { IsAntialias = false };
                    for (int n = 0; n < size * 2; n++)
                    {
                        noise.Color = RandomColour(random, 100, 255);
                        canvas.DrawPoint(random.Next(size), random.Next(size), noise);
                    }
                    using var paint = new SKPaint { IsAntialias = true, Color = RandomColour(random, 0, 140), Style = SKPaintStyle.Fill };
                    float radius = size * (0.2f + 0.15f * (float)random.NextDouble());
                    float cx = radius + (float)random.NextDouble() * (size - 2 * radius), cy = radius + (float)random.NextDouble() * (size - 2 * radius);
                    switch (name)
                    {
                        case "circle":
                            canvas.DrawCircle(cx, cy, radius, paint);
                            break;
                        case "square":
                            canvas.DrawRect(cx - radius, cy - radius, 2 * radius, 2 * radius, paint);
                            break;
                        default:
                            using (var path = new SKPath())
                            {
                                path.MoveTo(cx, cy - radius);
                                path.LineTo(cx + radius, cy + radius);
                                path.LineTo(cx - radius, cy + radius);
                                path.Close();
                                canvas.DrawPath(path, paint);
                            }
                            break;
                    }
                }
                using var image = SKImage.FromBitmap(bitmap);
                using var png = image.Encode(SKEncodedImageFormat.Png, 100);
                File.WriteAllBytes(Path.Combine(folder, $"{i}.png"), png.ToArray());
            }
        }
    }

    private static SKColor RandomColour(Random random, int low, int high) =>
        new((byte)random.Next(low, high), (byte)random.Next(low, high), (byte)random.Next(low, high));
}
