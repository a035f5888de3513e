using System.Globalization;
using Cnn.Cli.Data;
using Cnn.MLNet;
using Cnn.MLNet.Data;
using Cnn.MLNet.Training;
using Microsoft.ML;

namespace Cnn.Cli.Commands;

/// <summary>
/// <c>cnn lr-find</c>: the learning-rate range test on the data <c>cnn train</c> would train on (fastai's <c>lr_find</c>): one step per
/// batch at exponentially growing rates, the smoothed loss, a suggested rate, and the curve as a PNG.
/// </summary>
internal sealed class LrFindCommand : ICliCommand
{
    private static readonly HashSet<string> NotUsed = new(StringComparer.Ordinal)
    {
        "--epochs", "--lr", "--val-split", "--val-data", "--patience", "--warmup", "--plot", "--quiet", "--output",
    };

    public string Name => "lr-find";

    public string Summary => "learning-rate range test: loss against an exponential sweep of rates, a suggested rate and its plot";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        .. TrainSettings.Options.Where(o => !NotUsed.Contains(o.Name)),
        new("--start-lr", "rate of the first step (default 1e-7)", "F"),
        new("--end-lr", "rate of the last step (default 10)", "F"),
        new("--steps", "steps of the sweep, as many epochs as that takes (default 100)", "N"),
        CommonOptions.Output("the plot to write (default lr-find.png)"),
    ];

    public string Details => "  the data, model, batch and optimizer options are those of 'cnn train'; the sweep stops early once the smoothed loss exceeds 4x its minimum";

    public int Run(CliArguments arguments, TextWriter stdout, TextWriter stderr)
    {
        var settings = TrainSettings.Parse(arguments);
        var finder = new LearningRateFinderOptions
        {
            StartLearningRate = arguments.Double("--start-lr", 1e-7, min: 1e-12, max: 1e3)!.Value,
            EndLearningRate = arguments.Double("--end-lr", 10, min: 1e-12, max: 1e3)!.Value,
            Steps = arguments.Int("--steps", 100, min: 5, max: 100_000),
        };
        if (finder.EndLearningRate <= finder.StartLearningRate)
            throw new CliUsageException("option --end-lr must be larger than --start-lr");
        string plot = OutputPath.Check(arguments.String("--output") ?? "lr-find.png", "--output");
        bool fashion = settings.DataFolder is null || DataSources.IsIdxFolder(settings.DataFolder);
        var source = fashion
            ? DataSources.FashionMnistPart(FashionMnistSplit.Train, settings.Fit.Limit, settings.DataFolder)
            : DataSources.Folder(settings.DataFolder!, settings.Fit.Limit);
        stdout.WriteLine($"data:  {source.Description}: {DataSources.Count(source.Dataset.Count)} images, {source.Dataset.ClassNames.Count} classes");
        stdout.WriteLine(FormattableString.Invariant($"sweep: {finder.Steps} steps from {finder.StartLearningRate:G3} to {finder.EndLearningRate:G3}, batch {settings.Fit.Options.BatchSize}"));

        var ml = new MLContext(seed: settings.Fit.Options.Seed);
        var view = ImageDataViews.MapLabelsToKeys(ml, source.Dataset.ClassNames).Fit(ImageDataViews.ToDataView(ml, source.Dataset))
            .Transform(ImageDataViews.ToDataView(ml, source.Dataset));
        var result = CnnTrainer.Create(settings.Model, settings.ToTrainerOptions(), ml).FindLearningRate(view, finder);

        int every = Math.Max(1, result.LearningRates.Count / 20);
        stdout.WriteLine("    lr          loss      smoothed");
        for (int i = 0; i < result.LearningRates.Count; i += every)
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {result.LearningRates[i],10:0.000e+00}  {result.Losses[i],9:0.0000}  {result.SmoothedLosses[i],9:0.0000}"));
        if (result.Diverged)
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"stopped after {result.LearningRates.Count} steps: the loss diverged at lr {result.LearningRates[^1]:G3}"));
        stdout.WriteLine(result.Suggested is { } suggested
            ? string.Create(CultureInfo.InvariantCulture, $"suggested lr: {suggested:G3} (steepest fall of the smoothed loss)")
            : "suggested lr: none (the loss never fell; try a larger --end-lr or more --steps)");
        Plots.LrFinderPlot.Save(result.LearningRates, result.SmoothedLosses, result.Suggested, plot);
        stdout.WriteLine($"plot:  {Path.GetFullPath(plot)}");
        return 0;
    }
}
