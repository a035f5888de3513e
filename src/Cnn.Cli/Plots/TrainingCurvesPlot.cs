using OxyPlot;
using OxyPlot.Axes;
using OxyPlot.Series;

namespace Cnn.Cli.Plots;

/// <summary>
/// Training curves per epoch in three panels side by side: loss (train and validation), accuracy in percent (train and
/// validation) and the learning rate (log scale when it spans more than a factor of 10 and stays positive). Series without
/// values (no validation set) are left out.
/// </summary>
internal static class TrainingCurvesPlot
{
    /// <summary>Writes the curves of <paramref name="epochs"/> to <paramref name="path"/> as a PNG of <paramref name="width"/>×<paramref name="height"/>.</summary>
    /// <exception cref="ArgumentException">There are no epochs.</exception>
    public static void Save(IReadOnlyList<TrainingCurvePoint> epochs, string path, int width = 1500, int height = 450) =>
        PlotImage.Save(Panels(epochs), path, width, height);

    /// <summary>The PNG bytes of the curves.</summary>
    public static byte[] RenderPng(IReadOnlyList<TrainingCurvePoint> epochs, int width = 1500, int height = 450) =>
        PlotImage.RenderPng(Panels(epochs), width, height);

    internal static PlotModel[] Panels(IReadOnlyList<TrainingCurvePoint> epochs)
    {
        ArgumentNullException.ThrowIfNull(epochs);
        if (epochs.Count == 0) throw new ArgumentException("No epochs to plot.", nameof(epochs));
        return
        [
            Panel("Loss", "loss", epochs,
                Line("train", PlotStyle.Train, epochs, e => e.TrainLoss),
                Line("validation", PlotStyle.Validation, epochs, e => e.ValidationLoss)),
            Panel("Accuracy", "accuracy (%)", epochs,
                Line("train", PlotStyle.Train, epochs, e => e.TrainAccuracy * 100),
                Line("validation", PlotStyle.Validation, epochs, e => e.ValidationAccuracy * 100)),
            LearningRatePanel(epochs),
        ];
    }

    private static PlotModel Panel(string title, string yTitle, IReadOnlyList<TrainingCurvePoint> epochs, params LineSeries?[] series)
    {
        var model = PlotStyle.Model(title);
        model.Axes.Add(EpochAxis(epochs));
        model.Axes.Add(PlotStyle.Grid(new LinearAxis { Position = AxisPosition.Left, Title = yTitle }));
        model.Legends.Add(PlotStyle.LegendAbove());
        foreach (var s in series)
            if (s is not null) model.Series.Add(s);
        return model;
    }

    private static PlotModel LearningRatePanel(IReadOnlyList<TrainingCurvePoint> epochs)
    {
        var model = PlotStyle.Model("Learning rate");
        model.Axes.Add(EpochAxis(epochs));
        double min = epochs.Min(e => e.LearningRate), max = epochs.Max(e => e.LearningRate);
        Axis y = min > 0 && max / min > 10
            ? new LogarithmicAxis { Position = AxisPosition.Left, Title = "learning rate (log)", StringFormat = "0.##E+0" }
            : new LinearAxis { Position = AxisPosition.Left, Title = "learning rate", StringFormat = "G3" };
        model.Axes.Add(PlotStyle.Grid(y));
        model.Series.Add(Line("learning rate", PlotStyle.LearningRate, epochs, e => e.LearningRate)!);
        return model;
    }

    /// <summary>Whole epochs, a tick for each up to 10 epochs.</summary>
    private static LinearAxis EpochAxis(IReadOnlyList<TrainingCurvePoint> epochs) => PlotStyle.Grid(new LinearAxis
    {
        Position = AxisPosition.Bottom, Title = "epoch", MajorStep = Math.Max(1, Math.Ceiling(epochs.Max(e => e.Epoch) / 10.0)),
        MinimumMinorStep = 1, StringFormat = "0",
    });

    /// <summary>A line with markers through the epochs that have a finite value; null when none has.</summary>
    private static LineSeries? Line(string title, OxyColor color, IReadOnlyList<TrainingCurvePoint> epochs, Func<TrainingCurvePoint, double?> value)
    {
        var points = epochs
            .Select(e => (e.Epoch, Value: value(e)))
            .Where(p => p.Value is { } v && double.IsFinite(v))
            .Select(p => new DataPoint(p.Epoch, p.Value!.Value))
            .ToList();
        if (points.Count == 0) return null;
        var series = new LineSeries
        {
            Title = title, Color = color, StrokeThickness = 2, MarkerType = MarkerType.Circle, MarkerSize = 3.5, MarkerFill = color,
        };
        series.Points.AddRange(points);
        return series;
    }
}
