using OxyPlot;
using OxyPlot.SkiaSharp;
using SkiaSharp;

namespace Cnn.Cli.Plots;

/// <summary>Renders OxyPlot models side by side into one PNG of an exact pixel size.</summary>
internal static class PlotImage
{
    /// <summary>PNG bytes of <paramref name="panels"/> laid out left to right in equal widths, <paramref name="width"/>×<paramref name="height"/> pixels.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The size is too small for the panels.</exception>
    public static byte[] RenderPng(IReadOnlyList<PlotModel> panels, int width, int height)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 100);
        if (width < 100 * panels.Count)
            throw new ArgumentOutOfRangeException(nameof(width), width, $"{panels.Count} panels need a width of at least {100 * panels.Count} pixels; got {width}.");
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(bitmap))
        using (var context = new SkiaRenderContext { RenderTarget = RenderTarget.PixelGraphic, SkCanvas = canvas, UseTextShaping = false })
        {
            canvas.Clear(SKColors.White);
            double panelWidth = (double)width / panels.Count;
            for (int i = 0; i < panels.Count; i++)
            {
                IPlotModel panel = panels[i];
                panel.Update(true);
                canvas.Save();
                canvas.Translate((float)(i * panelWidth), 0);
                canvas.ClipRect(new SKRect(0, 0, (float)panelWidth, height));
                panel.Render(context, new OxyRect(0, 0, panelWidth, height));
                canvas.Restore();
            }
        }
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100)
            ?? throw new InvalidOperationException($"SkiaSharp could not encode the {width}x{height} plot as PNG.");
        return data.ToArray();
    }

    /// <summary>Renders the panels and writes the PNG to <paramref name="path"/> (its folder is created when missing).</summary>
    public static void Save(IReadOnlyList<PlotModel> panels, string path, int width, int height)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var png = RenderPng(panels, width, height);
        string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null) Directory.CreateDirectory(folder);
        File.WriteAllBytes(path, png);
    }
}
