using Cnn.Cli.Plots;
using OxyPlot;
using OxyPlot.Axes;

namespace Cnn.MLNet.Tests.Plots;

[TestClass]
public sealed class ConfusionMatrixPlotTests
{
    private static readonly string[] Names = ["cat", "dog", "bird", "fish"];

    private static readonly double[][] Counts =
    [
        [45, 3, 2, 0],
        [6, 30, 10, 4],
        [1, 12, 7, 0],
        [0, 0, 1, 9],
    ];

    [TestMethod]
    public void CellColoursFollowTheRowNormalisedCounts()
    {
        var model = ConfusionMatrixPlot.Model(Names, Counts);
        var picture = new Picture(PlotImage.RenderPng([model], 800, 700), "confusion-matrix.png");
        Assert.AreEqual((800, 700), (picture.Width, picture.Height));
        var predicted = (CategoryAxis)model.Axes.Single(a => a.Key == "predicted");
        var actual = (CategoryAxis)model.Axes.Single(a => a.Key == "true");
        var colors = (LinearColorAxis)model.Axes.Single(a => a is LinearColorAxis);
        double cellWidth = Math.Abs(predicted.Transform(1) - predicted.Transform(0)), cellHeight = Math.Abs(actual.Transform(1) - actual.Transform(0));
        Assert.IsGreaterThan(60, Math.Min(cellWidth, cellHeight), "cells are drawn large enough to sample");

        var fractions = ConfusionMatrixPlot.RowNormalised(Counts);
        var cells = new List<(double Fraction, double Luma)>();
        for (int t = 0; t < Names.Length; t++)
            for (int p = 0; p < Names.Length; p++)
            {
                int x = (int)predicted.Transform(p), y = (int)actual.Transform(t);
                var corner = picture[(int)(x - 0.35 * cellWidth), (int)(y - 0.35 * cellHeight)]; // away from the count's text
                var expected = colors.GetColor(fractions[t][p]);
                Assert.IsTrue(Picture.Near(corner, expected, 2), $"cell ({t}, {p}): colour {corner} != palette colour {expected} of {fractions[t][p]:0.000}");
                Assert.IsTrue(HasText(picture, x, y, corner), $"cell ({t}, {p}) shows its count");
                cells.Add((fractions[t][p], Picture.Luma(corner)));
            }
        var ordered = cells.OrderBy(c => c.Fraction).ToList();
        for (int i = 1; i < ordered.Count; i++)
            if (ordered[i].Fraction > ordered[i - 1].Fraction + 0.01)
                Assert.IsLessThan(ordered[i - 1].Luma, ordered[i].Luma, $"a larger fraction ({ordered[i].Fraction:0.000} > {ordered[i - 1].Fraction:0.000}) is darker");
    }

    [TestMethod]
    public void RowLabelsCarryTheRecallAndBadInputIsRejected()
    {
        var model = ConfusionMatrixPlot.Model(Names, Counts);
        var rows = ((CategoryAxis)model.Axes.Single(a => a.Key == "true")).ItemsSource.Cast<string>().ToArray();
        CollectionAssert.AreEqual(new[] { "cat (90.0%)", "dog (60.0%)", "bird (35.0%)", "fish (90.0%)" }, rows);
        Assert.AreEqual("130 images, accuracy 70.0%", model.Subtitle);
        var error = Assert.ThrowsExactly<ArgumentException>(() => ConfusionMatrixPlot.RenderPng(Names, Counts.Take(3).ToArray()));
        StringAssert.Contains(error.Message, "4x4");
        var bytes = ConfusionMatrixPlot.RenderPng(["a", "b"], [[0, 0], [2, 1]], 500, 400);
        var picture = new Picture(bytes, "confusion-matrix-empty-row.png");
        Assert.AreEqual((500, 400), (picture.Width, picture.Height));
        string[] many = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
        var diagonal = many.Select((_, i) => many.Select((_, j) => (double)(i == j ? 80 : (i + j) % 4)).ToArray()).ToArray();
        var ten = new Picture(ConfusionMatrixPlot.RenderPng(many, diagonal, 900, 800), "confusion-matrix-10-classes.png");
        Assert.AreEqual((900, 800), (ten.Width, ten.Height));
    }

    /// <summary>Whether the box around the cell centre has pixels far from the cell colour (the count's digits).</summary>
    private static bool HasText(Picture picture, int x, int y, OxyColor cell)
    {
        for (int dy = -6; dy <= 6; dy++)
            for (int dx = -10; dx <= 10; dx++)
                if (!Picture.Near(picture[x + dx, y + dy], cell, 60)) return true;
        return false;
    }
}
