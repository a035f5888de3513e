using System.Diagnostics;
using System.Globalization;
using Cnn.Cli.Data;
using Cnn.Cli.Inference;
using Cnn.Cli.Output;
using Cnn.Backbones.Models;
using Cnn.MLNet;
using Cnn.MLNet.Data;
using Cnn.MLNet.Distillation;
using Cnn.MLNet.Persistence;
using Microsoft.ML;

namespace Cnn.Cli.Commands;

/// <summary>
/// <c>cnn distill</c>: trains a student model to imitate a saved teacher (knowledge distillation) on a folder per class and/or a
/// folder of unlabelled images, and saves it with the same pipeline shape as <c>cnn train</c>
/// (<c>MapValueToKey(Label) → CNN → MapKeyToValue(PredictedClass)</c>), so <c>cnn eval</c> and <c>cnn predict --model-file</c> take it.
/// Loss per batch: alpha · cross-entropy over the labelled images + (1 − alpha) · T² · KL(teacher ‖ student at temperature T) over all
/// images; unlabelled images learn from the soft targets only, or from the teacher's argmax with <c>--pseudo-labels</c>. Defaults: the
/// student takes the teacher's classes, input size and channels; augmentation off, so the teacher runs once. Ctrl+C cancels cleanly.
/// </summary>
internal sealed class DistillCommand : ICliCommand
{
    public string Name => "distill";

    public string Summary => "train a small student model from a saved teacher model (knowledge distillation), with or without labels";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        new("--teacher", "the teacher: a model saved by 'cnn train'", "<model.zip>"),
        new("--student", "the student's registered architecture", "<name>"),
        new("--student-weights", "weights the student starts from: " + CommonOptions.WeightsForms + " (default: random)", "<name|file>"),
        new("--data", "labelled images: a folder per class (the teacher's class names)", "<folder>"),
        new("--unlabeled", "unlabelled images: a folder (searched recursively)", "<folder>"),
        .. FitRun.CliOptions(Defaults(), null, Shape),
    ];

    /// <summary>The defaults of the shared options: the library's, with augmentation off (the teacher runs once).</summary>
    private static CnnDistillationOptions Defaults() => new() { Augment = false };

    /// <summary>The student takes the teacher's input size and channels; the model is saved to student.zip.</summary>
    private static readonly FitShape Shape = new(null, null, "student.zip");

    public int Run(CliArguments arguments, TextWriter stdout, TextWriter stderr)
    {
        string teacherPath = arguments.Required("--teacher");
        string student = CliApp.RequireModel(arguments.Required("--student"));
        string? studentWeights = arguments.String("--student-weights");
        string? dataFolder = arguments.String("--data");
        string? unlabeledFolder = arguments.String("--unlabeled");
        var options = Defaults();
        var fit = FitRun.Parse(arguments, options, Shape);
        double temperature = options.Temperature;
        double alpha = options.Alpha;
        bool pseudoLabels = options.PseudoLabels;
        if (dataFolder is null && unlabeledFolder is null)
            throw new CliUsageException("give training images: --data <folder-per-class> and/or --unlabeled <folder of images>");
        int? cap = fit.Limit;
        var clock = Stopwatch.StartNew();

        var ml = new MLContext(seed: fit.Options.Seed);
        using var teacher = DistillationTeacher.FromModelFile(teacherPath, ml);
        var labelled = dataFolder is null ? null : TeacherClassFolder(DataSources.Folder(dataFolder, cap), teacher);
        var held = fit.ValidationFolder is null ? null : TeacherClassFolder(DataSources.Folder(fit.ValidationFolder, cap), teacher);
        var unlabeled = unlabeledFolder is null ? Array.Empty<string>() : UnlabeledFiles(unlabeledFolder, cap);
        var rows = new List<EncodedImageRow>();
        if (labelled is not null)
            rows.AddRange(labelled.Dataset.Samples.Select(s => new EncodedImageRow { Image = ImageDataViews.Encode(s), Label = labelled.Dataset.ClassNames[s.Label] }));
        rows.AddRange(unlabeled.Select(path => new EncodedImageRow { Image = File.ReadAllBytes(path), Label = "" }));
        var data = ml.Data.LoadFromEnumerable(rows);

        options.Student = new ModelOptions
        {
            Weights = studentWeights,
            InChannels = fit.Channels ?? teacher.InputChannels,
            ImageSize = fit.ImageSize ?? (teacher.InputSize.Height == teacher.InputSize.Width ? teacher.InputSize.Height : null),
            DropRate = 0,
        };
        options.ValidationFraction = held is null ? fit.ValidationSplit : 0;
        options.ValidationSet = held is null ? null : teacher.MapLabelsToKeys(ml).Fit(ImageDataViews.ToDataView(ml, held.Dataset)).Transform(ImageDataViews.ToDataView(ml, held.Dataset));
        using var reporter = new FitReporter(stdout, FitReporter.CsvPathFor(fit.Output),
            ["epoch", "loss", "hard_loss", "soft_loss", "train_accuracy", "teacher_accuracy", "agreement", "val_loss", "val_accuracy", "val_agreement",
             "lr", "images_per_second", "seconds", "skipped_images"], fit.Quiet);
        options.EpochCompleted = m => reporter.Epoch(FormatEpoch(m, fit.TotalEpochs),
            [m.Epoch, m.Loss, m.HardLoss, m.SoftLoss, m.StudentAccuracy, m.TeacherAccuracy, m.TeacherAgreement, m.ValidationLoss, m.ValidationAccuracy,
             m.ValidationAgreement, m.LearningRate, m.ImagesPerSecond, m.Elapsed.TotalSeconds, m.SkippedImages], Plots.TrainingCurvePoint.From(m));
        options.BatchCompleted = reporter.Batch;
        options.DataParallelCompleted = report => stdout.WriteLine(report);
        stdout.WriteLine($"teacher: {teacher.Description}, {teacher.InputChannels} channel(s), {teacher.InputSize.Height}x{teacher.InputSize.Width} px");
        stdout.WriteLine($"data:    {DataSources.Count(labelled?.Dataset.Count ?? 0)} labelled images{(labelled is null ? "" : $" ({labelled.Description})")}, " +
                         $"{DataSources.Count(unlabeled.Count)} unlabelled{(unlabeledFolder is null ? "" : $" ({Path.GetFullPath(unlabeledFolder)})")}");
        string size = FitRun.SizeText(options.Student.ImageSize, Cnn.Backbones.Models.ModelRegistry.Get(student).DefaultConfig.InputSize.Height);
        stdout.WriteLine($"student: {student}, {options.Student.InChannels} channel(s), image size {size}, " + fit.Describe() +
            FormattableString.Invariant($", T {temperature:G4}, alpha {alpha:G4}") + $"{(pseudoLabels ? ", pseudo-labels" : "")}, " +
            $"{(held is not null ? $"validation on {held.Description}, " : fit.ValidationSplit > 0 ? FormattableString.Invariant($"validation split {fit.ValidationSplit:G3}, ") : "")}{(studentWeights is null ? "from scratch" : $"from '{studentWeights}'")}");

        bool fitted = CancellableFit.FitAndSave("distill", "distilling", ml, data, fit.Output, fit.Force, token =>
        {
            options.CancellationToken = token;
            return teacher.MapLabelsToKeys(ml, "Label")
                .Append(CnnTrainer.Distill(teacher, student, options, ml))
                .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));
        }, reporter, stdout, stderr, clock);
        stdout.WriteLine($"metrics: {reporter.CsvPath}");
        if (fit.Plot && reporter.Curve.Count > 0) stdout.WriteLine($"curves:  {reporter.SaveCurves(fit.Output)}");
        if (!fitted) return CancellableFit.CancelledExitCode;
        if (Cnn.MLNet.Distributed.MpiLaunch.IsWorker) return 0; // under mpirun, rank 0 saves, reports and evaluates

        // Score the saved file (which proves it loads) next to the teacher on the labelled images of --data. The student trained on
        // them (but for a validation split, reported per epoch), so this is training accuracy, not an evaluation.
        if (labelled is not null)
        {
            using var saved = PipelineModel.Load(fit.Output);
            stdout.WriteLine("student: on the --data images it trained on (training accuracy): " + EvaluationReport.Of(saved, labelled).Summary());
            using var teacherModel = PipelineModel.Load(teacherPath);
            stdout.WriteLine("teacher: on the same images:                                     " + EvaluationReport.Of(teacherModel, labelled).Summary());
        }
        stdout.WriteLine($"done in {OutputPath.Duration(clock.Elapsed)}");
        return 0;
    }

    /// <summary>A folder per class whose classes the teacher knows; otherwise an error naming the unknown class folders.</summary>
    private static LabeledData TeacherClassFolder(LabeledData folder, DistillationTeacher teacher)
    {
        var unknown = folder.Dataset.ClassNames.Where(c => !teacher.ClassNames.Contains(c, StringComparer.Ordinal)).ToList();
        if (unknown.Count > 0)
            throw new InvalidDataException(
                $"{folder.Description} has class folder(s) {string.Join(", ", unknown.Take(5).Select(c => $"'{c}'"))}{(unknown.Count > 5 ? ", …" : "")} " +
                $"that the teacher does not know; its classes are {string.Join(", ", teacher.ClassNames.Select(c => $"'{c}'"))}. " +
                "Put images of other classes under --unlabeled, or rename the folders.");
        return folder;
    }

    /// <summary>Image files anywhere below <paramref name="folder"/> (the image extensions of a folder per class), in ordinal path order.</summary>
    private static IReadOnlyList<string> UnlabeledFiles(string folder, int? limit)
    {
        string full = Path.GetFullPath(folder);
        if (!Directory.Exists(full))
            throw new DirectoryNotFoundException($"Unlabelled image folder '{full}' does not exist.");
        var extensions = ImageFolderDataset.DefaultExtensions.ToHashSet(StringComparer.OrdinalIgnoreCase);
        var files = Directory.EnumerateFiles(full, "*", SearchOption.AllDirectories)
            .Where(f => extensions.Contains(Path.GetExtension(f)))
            .Order(StringComparer.Ordinal)
            .Take(limit ?? int.MaxValue)
            .ToList();
        if (files.Count == 0)
            throw new InvalidDataException($"Unlabelled image folder '{full}' holds no image ({string.Join(" ", ImageFolderDataset.DefaultExtensions)}).");
        return files;
    }

    private static string FormatEpoch(DistillationEpochMetrics m, int epochs)
    {
        string hard = m.HardLoss is { } h ? FormattableString.Invariant($" (hard {h:0.0000}, soft {m.SoftLoss:0.0000})") : FormattableString.Invariant($" (soft {m.SoftLoss:0.0000})");
        string accuracy = m.StudentAccuracy is { } s ? FormattableString.Invariant($"  acc {100 * s:0.00}%") : "";
        string validation = m.ValidationLoss is { } vl
            ? FormattableString.Invariant($"  val loss {vl:0.0000}") + (m.ValidationAccuracy is { } va ? FormattableString.Invariant($" acc {100 * va:0.00}%") : "") +
              FormattableString.Invariant($" agreement {100 * m.ValidationAgreement:0.00}%")
            : "";
        return FormattableString.Invariant($"epoch {m.Epoch}/{epochs}  loss {m.Loss:0.0000}") + hard + accuracy +
               FormattableString.Invariant($"  agreement {100 * m.TeacherAgreement:0.00}%") + validation +
               FormattableString.Invariant($"  lr {m.LearningRate:G3}  {m.ImagesPerSecond:0} img/s  {m.Elapsed.TotalSeconds:0.0}s") +
               (m.SkippedImages > 0 ? $"  ({m.SkippedImages} corrupt images skipped)" : "");
    }
}
