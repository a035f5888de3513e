using Cnn.Cli.Plots;
using OxyPlot;
using OxyPlot.Axes;

namespace Cnn.MLNet.Tests.Plots;

[TestClass]
public sealed class LrFinderPlotTests
{
    private static readonly double[] Rates = Enumerable.Range(0, 60).Select(i => 1e-6 * Math.Pow(10, i / 10.0)).ToArray();

    /// <summary>A finder-shaped curve: flat, falling around 1e-4..1e-2, then diverging (the last values are not finite).</summary>
    private static readonly double[] Losses = Rates.Select((lr, i) => i >= 57 ? double.PositiveInfinity : 2.3 - 1.5 / (1 + Math.Pow(3e-4 / lr, 1.5)) + Math.Pow(lr / 0.1, 2)).ToArray();

    [TestMethod]
    [DataRow(3e-4)]
    [DataRow(5e-3)]
    public void TheSuggestionIsMarkedInRedAtItsRate(double suggested)
    {
        var model = LrFinderPlot.Model(Rates, Losses, suggested);
        var picture = new Picture(PlotImage.RenderPng([model], 900, 550), $"lr-finder-{suggested:0e0}.png");
        Assert.AreEqual((900, 550), (picture.Width, picture.Height));
        Assert.IsGreaterThan(200, picture.Find(PlotStyle.Train).Count, "the loss curve is drawn");
        var red = picture.Find(PlotStyle.Highlight);
        Assert.IsGreaterThan(50, red.Count, "the suggestion is drawn in red");
        var axis = (LogarithmicAxis)model.Axes.Single(a => a.Position == AxisPosition.Bottom);
        Assert.IsTrue(axis.IsLogarithmic());
        // The dashed line: the column with the most red pixels is at the suggested rate on the log axis.
        int column = red.GroupBy(p => p.X).MaxBy(g => g.Count())!.Key;
        Assert.AreEqual(axis.Transform(suggested), column, 2.0, "the red line's column");
    }

    [TestMethod]
    public void WithoutASuggestionThereIsNoRedAndBadInputIsRejected()
    {
        var picture = new Picture(LrFinderPlot.RenderPng(Rates, Losses, null, 640, 400), "lr-finder-no-suggestion.png");
        Assert.AreEqual((640, 400), (picture.Width, picture.Height));
        Assert.IsEmpty(picture.Find(PlotStyle.Highlight));
        var descending = Rates.Reverse().ToArray();
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => LrFinderPlot.RenderPng(descending, Losses, null)).Message, "ascending");
        Assert.ThrowsExactly<ArgumentException>(() => LrFinderPlot.RenderPng(Rates, Losses.Take(10).ToArray(), null));
        Assert.ThrowsExactly<ArgumentException>(() => LrFinderPlot.RenderPng(Rates, Losses, -1));
    }
}
