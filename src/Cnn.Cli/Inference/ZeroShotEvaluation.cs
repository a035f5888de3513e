using Cnn.Cli.Commands;
using Cnn.Cli.Data;
using Cnn.Cli.Output;
using Cnn.MLNet.Clip;
using Cnn.MLNet.Data;
using Cnn.MLNet;
using Microsoft.ML;

namespace Cnn.Cli.Inference;

/// <summary>
/// <c>cnn eval --model &lt;CLIP model&gt;</c>: a zero-shot classifier (OpenCLIP's <c>build_zero_shot_classifier</c>, through
/// <c>ZeroShotClassify</c>) evaluated on a folder per class, with no training. The labels default to the class folders' names;
/// the report is the one a trained model gets (<see cref="EvaluationReport"/>).
/// </summary>
internal static class ZeroShotEvaluation
{
    /// <summary>The options <c>cnn eval</c> takes for a zero-shot model (its <c>--model</c> selects this path).</summary>
    public static IReadOnlyList<CliOption> Options { get; } =
    [
        ClipCli.Model,
        ClipCli.Weights,
        ClipCli.Labels("zero-shot with --model; default: the --data folder's class names"),
        ClipCli.Template,
    ];

    /// <summary>Whether the arguments ask for a zero-shot evaluation (<c>--model</c>, or another of its <see cref="Options"/>, given).</summary>
    public static bool Requested(CliArguments arguments) => Options.Any(o => arguments.String(o.Name) is not null);

    /// <summary>
    /// Checks the options, runs the zero-shot classifier on <c>--data</c> and evaluates it; usage errors (exit 2) for
    /// <c>--model-file</c> alongside, a missing or Fashion-MNIST <c>--data</c>, labels that do not cover the folder's classes,
    /// and compute options (the CLIP model runs in float32 with TorchSharp).
    /// </summary>
    public static EvaluationReport Evaluate(CliArguments arguments, string? folder, int? limit, int? topK, TextWriter stderr)
    {
        if (arguments.String("--model") is null)
            throw new CliUsageException("--weights, --labels and --template evaluate a CLIP model zero-shot: give --model too (e.g. --model ViT-B-32)");
        if (arguments.String("--model-file") is not null)
            throw new CliUsageException("give --model-file (a trained model) or --model (a CLIP model, evaluated zero-shot), not both");
        foreach (var option in new[] { "--precision", "--memory-format", "--engine" })
        {
            if (arguments.String(option) is not null)
                throw new CliUsageException($"{option} applies to --model-file; a CLIP model (--model) runs in float32 with TorchSharp");
        }
        string model = ClipCli.ModelName(arguments);
        if (folder is null)
            throw new CliUsageException("zero-shot evaluation (--model) needs --data <folder> with one subfolder of images per class");
        if (DataSources.IsIdxFolder(folder))
            throw new CliUsageException($"--data '{folder}' holds Fashion-MNIST IDX files; zero-shot evaluation (--model) needs a folder with one subfolder of images per class");
        var givenLabels = ClipCli.LabelsOf(arguments);
        var templates = ClipCli.TemplatesOf(arguments);
        if (givenLabels is not null) CheckLabels(givenLabels, topK, templates);

        var data = DataSources.Folder(folder, limit);
        var counts = data.Dataset.CountPerClass();
        var present = data.Dataset.ClassNames.Where((_, c) => counts[c] > 0).ToArray();
        var labels = givenLabels ?? data.Dataset.ClassNames.ToArray();
        if (givenLabels is null) CheckLabels(labels, topK, templates);
        var missing = present.Where(c => !labels.Contains(c, StringComparer.Ordinal)).ToArray();
        if (missing.Length > 0)
            throw new CliUsageException(
                $"--labels does not cover the class folder{(missing.Length == 1 ? "" : "s")} {string.Join(", ", missing.Select(m => $"'{m}'"))} of {data.Description}; " +
                "list every class folder's name (the labels are matched to the folder names)");
        string? weights = ClipCli.WeightsPath(arguments, model, stderr);

        var ml = new MLContext(seed: 0);
        var view = ImageDataViews.ToDataView(ml, data.Dataset);
        var options = new ClipZeroShotOptions
        {
            ModelName = model,
            WeightsPath = weights,
            ImageColumnName = "Image",
            Warn = w => stderr.WriteLine($"cnn: warning: {w}"),
        };
        using var classifier = ml.Transforms.ZeroShotClassify(labels, templates, options).Fit(view);
        var scored = ImageDataViews.MapLabelsToKeys(ml, labels).Fit(view).Transform(classifier.Transform(view));
        return EvaluationReport.Create(ml, scored, labels, $"{data.Description} (zero-shot {classifier.ModelName})", topK);
    }

    private static void CheckLabels(IReadOnlyList<string> labels, int? topK, IReadOnlyList<string> templates)
    {
        ClipCli.CheckPrompts(labels, templates);
        if (labels.Count < 2)
            throw new CliUsageException($"zero-shot classification needs at least two labels to choose between; got only '{labels[0]}'");
        if (topK > labels.Count)
            throw new CliUsageException($"option --topk ({topK}) exceeds the {labels.Count} labels");
    }
}
