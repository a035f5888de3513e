using System.Diagnostics;
using System.Globalization;
using Cnn.Cli.Data;
using Cnn.Cli.Inference;
using Cnn.Cli.Output;
using Cnn.MLNet;
using Cnn.MLNet.Data;
using Cnn.MLNet.Distributed;
using Cnn.MLNet.Persistence;
using Cnn.MLNet.Training;
using Microsoft.ML;

namespace Cnn.Cli.Commands;

/// <summary>
/// <c>cnn train</c>: fits <c>MapValueToKey(Label) → CNN → MapKeyToValue(PredictedClass)</c> on Fashion-MNIST (default) or a
/// folder per class, prints per-epoch progress, saves the pipeline and evaluates the saved file on the test split.
/// </summary>
internal sealed class TrainCommand : ICliCommand
{
    public string Name => "train";

    public string Summary => "fine-tune a model on Fashion-MNIST (default) or a folder per class and save the pipeline";

    public IReadOnlyList<CliOption> Options => TrainSettings.Options;

    public string Details =>
        $"  without --data: Fashion-MNIST ({FashionMnist.FolderVariable}, {FashionMnist.DebianFolder}, else the embedded subset), 1 channel, " +
        $"{TrainSettings.FashionImageSize} px, {TrainSettings.FashionEpochs} epochs of batch {TrainSettings.FashionBatchSize}, " +
        $"lr {TrainSettings.FashionLearningRate.ToString(CultureInfo.InvariantCulture)}, horizontal flips (--min-scale 1); evaluated on the test split\n" +
        "  with --data <folder per class>: 3 channels, the model's input size and crop, 5 epochs of batch 32, cosine; from scratch lr 0.006 and flips only\n" +
        $"    (--min-scale 1) for models under {TrainSettings.SmallModelParameters.ToString("N0", CultureInfo.InvariantCulture)} parameters, else lr 0.003 and random resized crops of 0.75-1 of the area;\n" +
        "    lr 0.001 with --weights (measured: see the README's folder sweep)\n" +
        "  with --data <folder of Fashion-MNIST IDX files> (train-/t10k-images-idx3-ubyte[.gz] and labels): as without --data, from those files\n" +
        "  --min-scale F: smallest area fraction of the random resized crop (1: horizontal flips only)\n" +
        "  --limit N: use at most N images of each source split (train, test), class-balanced: for quick smoke runs\n" +
        "  Ctrl+C cancels cleanly (nothing is saved)";

    public int Run(CliArguments arguments, TextWriter stdout, TextWriter stderr)
    {
        var settings = TrainSettings.Parse(arguments);
        var clock = Stopwatch.StartNew();
        bool fashion = settings.DataFolder is null || DataSources.IsIdxFolder(settings.DataFolder);
        var source = fashion
            ? DataSources.FashionMnistPart(FashionMnistSplit.Train, settings.Fit.Limit, settings.DataFolder)
            : DataSources.Folder(settings.DataFolder!, settings.Fit.Limit);
        var test = fashion ? DataSources.FashionMnistPart(FashionMnistSplit.Test, settings.Fit.Limit, settings.DataFolder) : null;
        var held = settings.Fit.ValidationFolder is { } validationFolder ? DataSources.Folder(validationFolder, settings.Fit.Limit) : null;
        if (held is not null && !held.Dataset.ClassNames.SequenceEqual(source.Dataset.ClassNames))
            throw new InvalidDataException($"{held.Description} has the classes {string.Join(", ", held.Dataset.ClassNames)} but the training data has " +
                                           $"{string.Join(", ", source.Dataset.ClassNames)}; give --val-data a folder with the same class folders.");
        var (train, validation) = held is not null ? (source.Dataset, held.Dataset)
            : settings.Fit.ValidationSplit > 0 ? source.Dataset.Split(settings.Fit.ValidationSplit, settings.Fit.Options.Seed)
            : (source.Dataset, null);
        stdout.WriteLine($"data:  {source.Description}: {DataSources.Count(train.Count)} training, {DataSources.Count(validation?.Count ?? 0)} validation images, " +
                         $"{train.ClassNames.Count} classes" + (test is null ? "" : $"; {DataSources.Count(test.Dataset.Count)} test images"));
        stdout.WriteLine($"model: {settings.Describe()}");

        var ml = new MLContext(seed: settings.Fit.Options.Seed);
        var trainView = ImageDataViews.ToDataView(ml, train);
        var options = settings.ToTrainerOptions();
        // Keys in the dataset's own label order (Fashion-MNIST's 0 = T-shirt/top … 9 = Ankle boot, a folder's sorted class
        // folders), whatever subset --limit samples: class k of the model is always the dataset's label k.
        var labelKeys = ImageDataViews.MapLabelsToKeys(ml, source.Dataset.ClassNames);
        if (validation is not null)
            options.ValidationSet = labelKeys.Fit(trainView).Transform(ImageDataViews.ToDataView(ml, validation));
        using var reporter = new FitReporter(stdout, FitReporter.CsvPathFor(settings.Fit.Output),
            ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "images_per_second", "seconds", "skipped_images"], settings.Fit.Quiet);
        options.EpochCompleted = m => reporter.Epoch(FormatEpoch(m, settings.Fit.TotalEpochs),
            [m.Epoch, m.TrainLoss, m.TrainAccuracy, m.ValidationLoss, m.ValidationAccuracy, m.LearningRate, m.ImagesPerSecond, m.Elapsed.TotalSeconds, m.SkippedImages], Plots.TrainingCurvePoint.From(m));
        options.BatchCompleted = reporter.Batch;
        options.DataParallelCompleted = report => stdout.WriteLine(report);

        bool fitted = CancellableFit.FitAndSave("train", "training", ml, trainView, settings.Fit.Output, settings.Fit.Force, token =>
        {
            options.CancellationToken = token;
            return labelKeys
                .Append(CnnTrainer.Create(settings.Model, options, ml))
                .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));
        }, reporter, stdout, stderr, clock);
        stdout.WriteLine($"metrics: {reporter.CsvPath}");
        if (settings.Fit.Plot && reporter.Curve.Count > 0) stdout.WriteLine($"curves:  {reporter.SaveCurves(settings.Fit.Output)}");
        if (!fitted) return CancellableFit.CancelledExitCode;
        if (MpiLaunch.IsWorker) return 0; // under mpirun, rank 0 saves, reports and evaluates

        // Evaluate the saved file, which also proves it loads.
        var evaluation = test ?? held ?? (validation is null ? null : new LabeledData(validation, source.Description + " validation split"));
        if (evaluation is not null)
        {
            using var saved = PipelineModel.Load(settings.Fit.Output);
            stdout.WriteLine("eval:  " + EvaluationReport.Of(saved, evaluation).Summary());
        }
        stdout.WriteLine($"done in {OutputPath.Duration(clock.Elapsed)}");
        return 0;
    }

    private static string FormatEpoch(EpochMetrics m, int epochs)
    {
        string validation = m.ValidationLoss is { } loss
            ? FormattableString.Invariant($"  val loss {loss:0.0000} acc {100 * m.ValidationAccuracy:0.00}%")
            : "";
        return FormattableString.Invariant(
            $"epoch {m.Epoch}/{epochs}  loss {m.TrainLoss:0.0000} acc {100 * m.TrainAccuracy:0.00}%") + validation +
            FormattableString.Invariant($"  lr {m.LearningRate:G3}  {m.ImagesPerSecond:0} img/s  {m.Elapsed.TotalSeconds:0.0}s") +
            (m.SkippedImages > 0 ? $"  ({m.SkippedImages} corrupt images skipped)" : "");
    }
}
