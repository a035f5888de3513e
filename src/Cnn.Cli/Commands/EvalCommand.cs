using Cnn.Cli.Data;
using Cnn.Cli.Inference;
using Cnn.Cli.Output;
using Cnn.MLNet.Data;

namespace Cnn.Cli.Commands;

/// <summary>
/// <c>cnn eval</c>: accuracy, log-loss, per-class precision/recall and the confusion matrix of a saved model on the
/// Fashion-MNIST test split or on a folder per class.
/// </summary>
internal sealed class EvalCommand : ICliCommand
{
    public string Name => "eval";

    public string Summary => "accuracy, log-loss, per-class precision/recall and confusion matrix of a saved model";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        CommonOptions.ModelFile(),
        new("--data", "a folder per class, or of Fashion-MNIST IDX files (their t10k split); default: the Fashion-MNIST test split", "<folder>"),
        CommonOptions.Limit,
        new("--topk", "also report top-K accuracy (default: top-1 only)", "K"),
        new("--plot", "draw the confusion matrix (counts, per-class recall) to this PNG", "<file.png>"),
        .. ComputeOptions.InferenceOptions,
        CommonOptions.Json,
        .. ZeroShotEvaluation.Options,
    ];

    public string Details =>
        "With --model (a CLIP model or an hf-hub: OpenCLIP name) instead of --model-file, a zero-shot classifier is evaluated on\n" +
        "--data, a folder per class, with no training: the labels (default: the class folders' names) become prompts through the\n" +
        "templates, as OpenCLIP's build_zero_shot_classifier does.";

    public int Run(CliArguments arguments, TextWriter stdout, TextWriter stderr)
    {
        ComputeOptions.Check(arguments);
        string? folder = arguments.String("--data");
        int? cap = arguments.OptionalInt("--limit", min: 2);
        bool json = arguments.Flag("--json");
        int? topK = arguments.OptionalInt("--topk", min: 1);
        string? plot = arguments.String("--plot") is { } p ? OutputPath.Check(p, "--plot") : null;
        if (ZeroShotEvaluation.Requested(arguments))
            return ZeroShotEvaluation.Evaluate(arguments, folder, cap, topK, stderr).Write(json, plot, stdout, stderr);
        string modelFile = arguments.Required("--model-file");

        using var model = PipelineModel.Load(modelFile);
        model.UseCompute(arguments);
        var data = folder is null || DataSources.IsIdxFolder(folder)
            ? DataSources.FashionMnistPart(FashionMnistSplit.Test, cap, folder)
            : DataSources.Folder(folder, cap);
        if (topK > model.ClassNames.Count)
            throw new CliUsageException($"option --topk ({topK}) exceeds the model's {model.ClassNames.Count} classes");
        var report = EvaluationReport.Of(model, data, topK);
        ComputeOptions.ReportEngine(model.Classifier.Network, stderr);
        return report.Write(json, plot, stdout, stderr);
    }
}
