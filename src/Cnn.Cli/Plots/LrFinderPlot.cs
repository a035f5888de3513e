using System.Globalization;
using OxyPlot;
using OxyPlot.Annotations;
using OxyPlot.Axes;
using OxyPlot.Series;

namespace Cnn.Cli.Plots;

/// <summary>
/// The learning-rate finder's curve: smoothed loss against learning rate on a log axis, with the suggested rate marked by a
/// red dashed vertical line and a red point on the curve. Non-finite losses (a diverged tail) are left out, and the loss axis
/// stops at twice the first loss, so a diverging tail does not flatten the part of the curve that matters.
/// </summary>
internal static class LrFinderPlot
{
    /// <summary>Writes the plot to <paramref name="path"/> as a PNG of <paramref name="width"/>×<paramref name="height"/>.</summary>
    /// <param name="learningRates">The rates tried, positive and ascending.</param>
    /// <param name="smoothedLosses">The smoothed loss at each rate.</param>
    /// <param name="suggested">The suggested rate, or null when the finder made none.</param>
    /// <param name="path">Output PNG.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    /// <exception cref="ArgumentException">The lists differ in length, a rate is not positive and ascending, fewer than two losses are finite, or the suggestion is not positive.</exception>
    public static void Save(IReadOnlyList<double> learningRates, IReadOnlyList<double> smoothedLosses, double? suggested, string path, int width = 900, int height = 550) =>
        PlotImage.Save([Model(learningRates, smoothedLosses, suggested)], path, width, height);

    /// <summary>The PNG bytes of the plot.</summary>
    /// <inheritdoc cref="Save"/>
    public static byte[] RenderPng(IReadOnlyList<double> learningRates, IReadOnlyList<double> smoothedLosses, double? suggested, int width = 900, int height = 550) =>
        PlotImage.RenderPng([Model(learningRates, smoothedLosses, suggested)], width, height);

    internal static PlotModel Model(IReadOnlyList<double> learningRates, IReadOnlyList<double> smoothedLosses, double? suggested)
    {
        var points = Check(learningRates, smoothedLosses, suggested);
        var model = PlotStyle.Model("Learning-rate finder");
        model.Axes.Add(PlotStyle.Grid(new LogarithmicAxis { Position = AxisPosition.Bottom, Title = "learning rate (log)", StringFormat = "0.#E+0" }));
        var lossAxis = PlotStyle.Grid(new LinearAxis { Position = AxisPosition.Left, Title = "smoothed loss" });
        double top = 2 * Math.Abs(points[0].Y);
        if (points.Max(p => p.Y) > top && top > points.Min(p => p.Y)) lossAxis.Maximum = top;
        model.Axes.Add(lossAxis);
        model.Legends.Add(PlotStyle.LegendAbove());
        var curve = new LineSeries { Title = "smoothed loss", Color = PlotStyle.Train, StrokeThickness = 2 };
        curve.Points.AddRange(points);
        model.Series.Add(curve);
        if (suggested is { } rate)
        {
            string label = string.Create(CultureInfo.InvariantCulture, $"suggested {rate:0.##E+0}");
            model.Annotations.Add(new LineAnnotation
            {
                Type = LineAnnotationType.Vertical, X = rate, Color = PlotStyle.Highlight, StrokeThickness = 2, LineStyle = LineStyle.Dash,
            });
            var marker = new ScatterSeries { Title = label, MarkerType = MarkerType.Circle, MarkerSize = 6, MarkerFill = PlotStyle.Highlight };
            marker.Points.Add(new ScatterPoint(rate, LossAt(points, rate)));
            model.Series.Add(marker);
        }
        return model;
    }

    /// <summary>The loss at <paramref name="rate"/>, interpolated linearly in log(rate) between the neighbouring points.</summary>
    private static double LossAt(IReadOnlyList<DataPoint> points, double rate)
    {
        if (rate <= points[0].X) return points[0].Y;
        for (int i = 1; i < points.Count; i++)
            if (rate <= points[i].X)
            {
                double t = Math.Log(rate / points[i - 1].X) / Math.Log(points[i].X / points[i - 1].X);
                return points[i - 1].Y + t * (points[i].Y - points[i - 1].Y);
            }
        return points[^1].Y;
    }

    private static List<DataPoint> Check(IReadOnlyList<double> learningRates, IReadOnlyList<double> smoothedLosses, double? suggested)
    {
        ArgumentNullException.ThrowIfNull(learningRates);
        ArgumentNullException.ThrowIfNull(smoothedLosses);
        if (learningRates.Count != smoothedLosses.Count)
            throw new ArgumentException($"{learningRates.Count} learning rates but {smoothedLosses.Count} losses.", nameof(smoothedLosses));
        for (int i = 0; i < learningRates.Count; i++)
            if (!(learningRates[i] > 0) || !double.IsFinite(learningRates[i]) || (i > 0 && learningRates[i] <= learningRates[i - 1]))
                throw new ArgumentException($"Learning rates must be positive, finite and ascending; rate {i} is {learningRates[i]}.", nameof(learningRates));
        if (suggested is { } s && !(s > 0 && double.IsFinite(s)))
            throw new ArgumentException($"The suggested rate must be positive; got {s}.", nameof(suggested));
        var points = learningRates.Zip(smoothedLosses, (lr, loss) => new DataPoint(lr, loss)).Where(p => double.IsFinite(p.Y)).ToList();
        if (points.Count < 2) throw new ArgumentException($"At least two finite losses are needed to draw a curve; got {points.Count}.", nameof(smoothedLosses));
        return points;
    }
}
