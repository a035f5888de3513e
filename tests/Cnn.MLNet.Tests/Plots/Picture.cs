using Cnn.MLNet.Imaging;
using OxyPlot;

namespace Cnn.MLNet.Tests.Plots;

/// <summary>Keeps the pictures tests make: when <c>CNN_TEST_PICTURES</c> names a folder, they are written there to be looked at.</summary>
internal static class TestPictures
{
    public static void Keep(string name, byte[] png)
    {
        if (Environment.GetEnvironmentVariable("CNN_TEST_PICTURES") is not { Length: > 0 } folder) return;
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, name), png);
    }
}

/// <summary>A decoded PNG for pixel checks (also kept by <see cref="TestPictures"/>).</summary>
internal sealed class Picture
{
    private readonly byte[] _rgb;

    public Picture(byte[] png, string name)
    {
        TestPictures.Keep(name, png);
        Assert.IsTrue(png.AsSpan(0, 8).SequenceEqual(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }), $"{name} is a PNG");
        var decoded = ImageDecoder.Decode(png, 3, name);
        Width = decoded.Width;
        Height = decoded.Height;
        _rgb = decoded.Pixels.ToArray();
    }

    public int Width { get; }

    public int Height { get; }

    public OxyColor this[int x, int y]
    {
        get
        {
            int i = (y * Width + x) * 3;
            return OxyColor.FromRgb(_rgb[i], _rgb[i + 1], _rgb[i + 2]);
        }
    }

    /// <summary>The pixels (x, y) in the rectangle [left, right) × [top, bottom) whose colour is within 12 per channel of <paramref name="color"/>.</summary>
    public List<(int X, int Y)> Find(OxyColor color, int left = 0, int top = 0, int right = int.MaxValue, int bottom = int.MaxValue)
    {
        var found = new List<(int, int)>();
        for (int y = Math.Max(top, 0); y < Math.Min(bottom, Height); y++)
            for (int x = Math.Max(left, 0); x < Math.Min(right, Width); x++)
                if (Near(this[x, y], color, 12)) found.Add((x, y));
        return found;
    }

    public static bool Near(OxyColor a, OxyColor b, int tolerance) =>
        Math.Abs(a.R - b.R) <= tolerance && Math.Abs(a.G - b.G) <= tolerance && Math.Abs(a.B - b.B) <= tolerance;

    /// <summary>Rec. 601 luma.</summary>
    public static double Luma(OxyColor c) => 0.299 * c.R + 0.587 * c.G + 0.114 * c.B;
}
