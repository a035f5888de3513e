using Cnn.Cli.Plots;
using OxyPlot;

namespace Cnn.MLNet.Tests.Plots;

[TestClass]
public sealed class TrainingCurvesPlotTests
{
    private static List<TrainingCurvePoint> Epochs(bool validation) => Enumerable.Range(1, 8).Select(e => new TrainingCurvePoint(
        e, TrainLoss: 2.0 / e, TrainAccuracy: 0.3 + 0.08 * e,
        ValidationLoss: validation ? 2.2 / e + 0.1 : null, ValidationAccuracy: validation ? 0.25 + 0.07 * e : null,
        LearningRate: 0.1 * Math.Pow(0.5, e - 1))).ToList();

    [TestMethod]
    public void ThreePanelsShowTrainAndValidationCurvesAtTheRequestedSize()
    {
        var picture = new Picture(TrainingCurvesPlot.RenderPng(Epochs(validation: true), 1200, 400), "training-curves.png");
        Assert.AreEqual((1200, 400), (picture.Width, picture.Height));
        foreach (var (panel, left) in new[] { ("loss", 0), ("accuracy", 400) })
        {
            Assert.IsGreaterThan(100, picture.Find(PlotStyle.Train, left, 0, left + 400).Count, $"{panel} panel: the train series is drawn");
            Assert.IsGreaterThan(100, picture.Find(PlotStyle.Validation, left, 0, left + 400).Count, $"{panel} panel: the validation series is drawn");
        }
        Assert.IsGreaterThan(100, picture.Find(PlotStyle.LearningRate, 800, 0, 1200).Count, "learning-rate panel: the rate is drawn");
        Assert.IsEmpty(picture.Find(PlotStyle.LearningRate, 0, 0, 800), "the rate is drawn only in its panel");

        // The loss falls and the accuracy rises: train pixels sit lower on the left than on the right of the loss panel, and
        // the other way round in the accuracy panel (screen y grows downwards).
        Assert.IsLessThan(MeanY(picture, PlotStyle.Train, 250, 380), MeanY(picture, PlotStyle.Train, 60, 140), "loss decreases");
        Assert.IsGreaterThan(MeanY(picture, PlotStyle.Train, 650, 780), MeanY(picture, PlotStyle.Train, 460, 540), "accuracy increases");
    }

    [TestMethod]
    public void WithoutValidationOnlyTheTrainSeriesIsDrawn()
    {
        var epochs = Epochs(validation: false);
        var picture = new Picture(TrainingCurvesPlot.RenderPng(epochs, 900, 300), "training-curves-no-validation.png");
        Assert.AreEqual((900, 300), (picture.Width, picture.Height));
        Assert.IsGreaterThan(100, picture.Find(PlotStyle.Train).Count);
        Assert.IsEmpty(picture.Find(PlotStyle.Validation), "no validation colour without validation values");
        var panels = TrainingCurvesPlot.Panels(epochs);
        CollectionAssert.AreEqual(new[] { "Loss", "Accuracy", "Learning rate" }, panels.Select(p => p.Title).ToArray());
        Assert.AreEqual("learning rate (log)", panels[2].Axes[1].Title, "a rate spanning 128x gets a log axis");
        Assert.ThrowsExactly<ArgumentException>(() => TrainingCurvesPlot.RenderPng([]));
    }

    [TestMethod]
    public void SaveWritesThePngFile()
    {
        string path = Path.Combine(Path.GetTempPath(), $"cnn-curves-{Guid.NewGuid():N}", "curves.png");
        try
        {
            TrainingCurvesPlot.Save(Epochs(validation: true), path, 600, 240);
            var picture = new Picture(File.ReadAllBytes(path), "training-curves-small.png");
            Assert.AreEqual((600, 240), (picture.Width, picture.Height));
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
        }
    }

    [TestMethod]
    public void EpochMetricsOfTrainingAndDistillationMapOntoPoints()
    {
        var trained = TrainingCurvePoint.From(new Cnn.MLNet.Training.EpochMetrics(3, 0.5, 0.8, 0.6, 0.75, 1e-3, 100, TimeSpan.FromSeconds(2)));
        Assert.AreEqual(new TrainingCurvePoint(3, 0.5, 0.8, 0.6, 0.75, 1e-3), trained);
        var distilled = TrainingCurvePoint.From(new Cnn.MLNet.Distillation.DistillationEpochMetrics(
            2, Loss: 1.2, HardLoss: 0.4, SoftLoss: 0.09, StudentAccuracy: 0.84, TeacherAccuracy: 0.91, TeacherAgreement: 0.88,
            LabelledImages: 10, UnlabelledImages: 5, LearningRate: 0.01, ImagesPerSecond: 50, Elapsed: TimeSpan.FromSeconds(1),
            ValidationLoss: 1.3, ValidationAccuracy: 0.8));
        Assert.AreEqual(new TrainingCurvePoint(2, 1.2, 0.84, 1.3, 0.8, 0.01), distilled);
    }

    private static double MeanY(Picture picture, OxyColor color, int left, int right)
    {
        var found = picture.Find(color, left, 40, right, 340);
        Assert.IsGreaterThan(5, found.Count, $"series pixels between x = {left} and {right}");
        return found.Average(p => p.Y);
    }
}
