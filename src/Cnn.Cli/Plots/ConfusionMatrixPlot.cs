using System.Globalization;
using OxyPlot;
using OxyPlot.Annotations;
using OxyPlot.Axes;
using OxyPlot.Series;

namespace Cnn.Cli.Plots;

/// <summary>
/// A confusion matrix as a heatmap: true classes top to bottom (each row label carries the class's recall), predicted classes
/// left to right, the count written in every cell, and the cell colour the row-normalised count (the fraction of the true
/// class predicted as that column: white 0, dark blue 1).
/// </summary>
internal static class ConfusionMatrixPlot
{
    /// <summary>Palette of the row-normalised counts, white (0) to dark blue (1).</summary>
    internal static readonly OxyPalette Palette = OxyPalette.Interpolate(256,
        OxyColors.White, OxyColor.FromRgb(0x9E, 0xCA, 0xE1), OxyColor.FromRgb(0x31, 0x82, 0xBD), OxyColor.FromRgb(0x08, 0x30, 0x6B));

    /// <summary>Writes the matrix to <paramref name="path"/> as a PNG of <paramref name="width"/>×<paramref name="height"/>.</summary>
    /// <param name="classNames">Class names, in index order.</param>
    /// <param name="counts">counts[true][predicted], a square matrix of the class count (ML.NET's <c>ConfusionMatrix.Counts</c> as it is).</param>
    /// <param name="path">Output PNG.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    /// <exception cref="ArgumentException">The matrix is not square with one row per class, or a count is negative.</exception>
    public static void Save(IReadOnlyList<string> classNames, IReadOnlyList<IReadOnlyList<double>> counts, string path, int width = 800, int height = 700) =>
        PlotImage.Save([Model(classNames, counts)], path, width, height);

    /// <summary>The PNG bytes of the matrix.</summary>
    /// <inheritdoc cref="Save"/>
    public static byte[] RenderPng(IReadOnlyList<string> classNames, IReadOnlyList<IReadOnlyList<double>> counts, int width = 800, int height = 700) =>
        PlotImage.RenderPng([Model(classNames, counts)], width, height);

    /// <summary>counts[i][j] / Σ_j counts[i][j]; a row without images is all zeros.</summary>
    internal static double[][] RowNormalised(IReadOnlyList<IReadOnlyList<double>> counts) =>
        counts.Select(row =>
        {
            double total = row.Sum();
            return row.Select(c => total > 0 ? c / total : 0).ToArray();
        }).ToArray();

    internal static PlotModel Model(IReadOnlyList<string> classNames, IReadOnlyList<IReadOnlyList<double>> counts)
    {
        Check(classNames, counts);
        int n = classNames.Count;
        var fractions = RowNormalised(counts);
        double total = counts.Sum(r => r.Sum()), correct = Enumerable.Range(0, n).Sum(i => counts[i][i]);
        var model = PlotStyle.Model("Confusion matrix");
        model.Subtitle = string.Create(CultureInfo.InvariantCulture, $"{total:0.##} images, accuracy {(total > 0 ? 100.0 * correct / total : 0):0.0}%");
        model.Axes.Add(new CategoryAxis
        {
            Position = AxisPosition.Bottom, Key = "predicted", Title = "predicted class", ItemsSource = classNames.ToArray(),
            Angle = n > 6 ? -40 : 0, IsZoomEnabled = false, IsPanEnabled = false, GapWidth = 0,
        });
        model.Axes.Add(new CategoryAxis
        {
            Position = AxisPosition.Left, Key = "true", Title = "true class (recall)", StartPosition = 1, EndPosition = 0, // class 0 on top
            ItemsSource = Enumerable.Range(0, n).Select(i => RowLabel(classNames[i], counts[i][i], counts[i].Sum())).ToArray(),
            IsZoomEnabled = false, IsPanEnabled = false, GapWidth = 0,
        });
        model.Axes.Add(new LinearColorAxis
        {
            Position = AxisPosition.Right, Palette = Palette, Minimum = 0, Maximum = 1, Title = "fraction of the true class",
            StringFormat = "0.0", IsZoomEnabled = false, IsPanEnabled = false,
        });
        var data = new double[n, n]; // [x = predicted, y = true]
        for (int t = 0; t < n; t++)
            for (int p = 0; p < n; p++)
                data[p, t] = fractions[t][p];
        model.Series.Add(new HeatMapSeries
        {
            X0 = 0, X1 = n - 1, Y0 = 0, Y1 = n - 1, Data = data, XAxisKey = "predicted", YAxisKey = "true",
            RenderMethod = HeatMapRenderMethod.Rectangles, Interpolate = false, LabelFontSize = 0,
        });
        double fontSize = Math.Clamp(160.0 / n, 7, 16);
        for (int t = 0; t < n; t++)
            for (int p = 0; p < n; p++)
                model.Annotations.Add(new TextAnnotation
                {
                    Text = counts[t][p].ToString("0.##", CultureInfo.InvariantCulture), TextPosition = new DataPoint(p, t),
                    XAxisKey = "predicted", YAxisKey = "true", FontSize = fontSize, Stroke = OxyColors.Transparent, Background = OxyColors.Transparent,
                    TextColor = fractions[t][p] > 0.5 ? OxyColors.White : OxyColors.Black,
                    TextHorizontalAlignment = HorizontalAlignment.Center, TextVerticalAlignment = VerticalAlignment.Middle,
                });
        return model;
    }

    private static string RowLabel(string name, double correct, double total) => total > 0
        ? string.Create(CultureInfo.InvariantCulture, $"{name} ({100.0 * correct / total:0.0}%)")
        : $"{name} (no images)";

    private static void Check(IReadOnlyList<string> classNames, IReadOnlyList<IReadOnlyList<double>> counts)
    {
        ArgumentNullException.ThrowIfNull(classNames);
        ArgumentNullException.ThrowIfNull(counts);
        if (classNames.Count == 0) throw new ArgumentException("No classes to plot.", nameof(classNames));
        if (counts.Count != classNames.Count || counts.Any(r => r is null || r.Count != classNames.Count))
            throw new ArgumentException(
                $"The confusion matrix must be {classNames.Count}x{classNames.Count} (one row and one column per class); got rows of " +
                $"[{string.Join(", ", counts.Select(r => r?.Count ?? 0))}].", nameof(counts));
        if (counts.Any(r => r.Any(c => !(c >= 0) || double.IsInfinity(c))))
            throw new ArgumentException("Counts must be finite and not negative.", nameof(counts));
    }
}
