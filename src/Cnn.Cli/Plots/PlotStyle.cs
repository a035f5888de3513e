using OxyPlot;
using OxyPlot.Axes;
using OxyPlot.Legends;

namespace Cnn.Cli.Plots;

/// <summary>The look every plot shares: white background, one sans-serif font, fixed series colours, light grid lines.</summary>
internal static class PlotStyle
{
    /// <summary>Training series (blue).</summary>
    public static readonly OxyColor Train = OxyColor.FromRgb(0x1F, 0x77, 0xB4);

    /// <summary>Validation series (orange).</summary>
    public static readonly OxyColor Validation = OxyColor.FromRgb(0xFF, 0x7F, 0x0E);

    /// <summary>Learning rate (green).</summary>
    public static readonly OxyColor LearningRate = OxyColor.FromRgb(0x2C, 0xA0, 0x2C);

    /// <summary>A highlighted value, such as the LR finder's suggestion (red).</summary>
    public static readonly OxyColor Highlight = OxyColor.FromRgb(0xD6, 0x27, 0x28);

    /// <summary>A model with the shared look and <paramref name="title"/>.</summary>
    public static PlotModel Model(string title) => new()
    {
        Title = title,
        Background = OxyColors.White,
        DefaultFont = "DejaVu Sans",
        DefaultFontSize = 12,
        TitleFontSize = 14,
        PlotAreaBorderColor = OxyColor.FromRgb(0x80, 0x80, 0x80),
    };

    /// <summary>A one-row legend above the plot area, so it never hides a curve.</summary>
    public static Legend LegendAbove() => new()
    {
        LegendPosition = LegendPosition.TopCenter,
        LegendPlacement = LegendPlacement.Outside,
        LegendOrientation = LegendOrientation.Horizontal,
        LegendBorderThickness = 0,
    };

    /// <summary>
    /// Light solid major grid lines on <paramref name="axis"/>, 4% padding at both ends (markers at the first and last point stay
    /// whole), no zooming (static pictures).
    /// </summary>
    public static T Grid<T>(T axis) where T : Axis
    {
        axis.MinimumPadding = 0.04;
        axis.MaximumPadding = 0.04;
        axis.MajorGridlineStyle = LineStyle.Solid;
        axis.MajorGridlineColor = OxyColor.FromRgb(0xE4, 0xE4, 0xE4);
        axis.IsZoomEnabled = false;
        axis.IsPanEnabled = false;
        return axis;
    }
}
