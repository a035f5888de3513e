using System.Globalization;
using Cnn.MLNet;
using Cnn.MLNet.Training;

namespace Cnn.Cli.Commands;

/// <summary>The defaults of the options only the command line has, per verb.</summary>
/// <param name="ImageSize">Square input size, or null for the model's configuration.</param>
/// <param name="Channels">Input channels, or null for the verb's own rule.</param>
/// <param name="Output">Where the model is saved.</param>
internal sealed record FitShape(int? ImageSize, int? Channels, string Output);

/// <summary>
/// A training run from the command line (<c>cnn train</c>, <c>cnn distill</c>, <c>cnn lr-find</c>): the options
/// <see cref="CnnFitOptions"/> declares for the command line (<see cref="CommandLineOptionAttribute"/>) are bound straight into the
/// verb's options; this holds what only the command line has (input shape, validation folder, threads, output, progress) and the
/// checks across options that a usage error reports before any work.
/// </summary>
internal sealed class FitRun
{
    /// <summary>The weight-average decay of <c>--model-ema</c> without <c>--model-ema-decay</c>: timm's <c>--model-ema-decay</c> default.</summary>
    public const double ModelEmaDefaultDecay = 0.9998;

    /// <summary>
    /// The options of a training verb: the ones its options class declares (<see cref="CnnFitOptions"/>'s, then its own), each with the default <paramref name="defaults"/> holds unless its name
    /// is in <paramref name="varying"/> (defaults that depend on the data), and the command line's own, with
    /// <paramref name="shape"/>'s defaults when the verb has one set of them.
    /// </summary>
    public static IReadOnlyList<CliOption> CliOptions(CnnFitOptions defaults, IReadOnlySet<string>? varying, FitShape? shape)
    {
        string Default(object? value) => shape is null ? "" : value is null ? " (default: the model's)" : FormattableString.Invariant($" (default {value})");
        return
        [
            new("--image-size", "square input size in pixels" + Default(shape?.ImageSize), "N"),
            new("--channels", "input channels: 1 (grey) or 3 (RGB)" + Default(shape?.Channels), "1|3"),
            .. DeclaredOption.Of(defaults.GetType()).Select(o => o.ToCliOption(varying?.Contains(o.Declaration.Name) == true ? null : defaults)),
            new("--val-data", "validation images: a folder per class (instead of --val-split)", "<folder>"),
            new("--model-ema", FormattableString.Invariant($"keep an exponential moving average of the weights (timm's ModelEmaV2, decay {ModelEmaDefaultDecay} unless --model-ema-decay); validate and save it")),
            new("--threads", "CPU threads of the network's operations (default: all cores)", "N"),
            new("--quiet", "no progress bar: one line per epoch only", Alias: "-q"),
            new("--plot", "also draw the loss, accuracy and learning-rate curves to a PNG beside the model (model.curves.png)"),
            CommonOptions.Limit,
            CommonOptions.Output("where the model is saved" + Default(shape?.Output)),
            new("--force", "replace the output file even when it is read-only"),
        ];
    }

    /// <summary>The verb's options, with every declared option the command line gave.</summary>
    public required CnnFitOptions Options { get; init; }

    /// <summary>Every epoch of the run: the head-only ones first, then the epochs.</summary>
    public int TotalEpochs => Options.FreezeEpochs + Options.Epochs;

    /// <summary>Square input size, or null for the model's configuration.</summary>
    public int? ImageSize { get; init; }

    /// <summary>Input channels (1 or 3), or null for the verb's own rule.</summary>
    public int? Channels { get; init; }

    /// <summary>Fraction of the training images held out for validation (<c>--val-split</c>), as parsed.</summary>
    public double ValidationSplit { get; init; }

    /// <summary>A folder per class of validation images, or null.</summary>
    public string? ValidationFolder { get; init; }

    /// <summary>CPU threads of the network's operations, or null for libtorch's default.</summary>
    public int? Threads { get; init; }

    /// <summary>No progress bar.</summary>
    public bool Quiet { get; init; }

    /// <summary>Draw the training curves beside the model.</summary>
    public bool Plot { get; init; }

    /// <summary>Cap on images per source split (class-balanced), or null.</summary>
    public int? Limit { get; init; }

    /// <summary>Where the pipeline is saved.</summary>
    public required string Output { get; init; }

    /// <summary>Replace a read-only output file.</summary>
    public bool Force { get; init; }

    /// <summary>
    /// Binds the declared options the command line gave into <paramref name="options"/> (which holds the verb's defaults), reads
    /// the command line's own with <paramref name="shape"/>'s defaults, and checks the options together.
    /// </summary>
    /// <exception cref="CliUsageException">Options that do not go together, or an output that cannot be written.</exception>
    public static FitRun Parse(CliArguments arguments, CnnFitOptions options, FitShape shape)
    {
        if (arguments.Result is { } result)
            foreach (var declared in DeclaredOption.Of(options.GetType()))
                declared.Bind(result, options);
        if (arguments.Flag("--model-ema") && !arguments.Given("--model-ema-decay"))
            options.ModelEmaDecay = ModelEmaDefaultDecay;
        var run = new FitRun
        {
            Options = options,
            ImageSize = arguments.OptionalInt("--image-size", shape.ImageSize, min: 8, max: 4096),
            Channels = arguments.OptionalInt("--channels", shape.Channels, min: 1, max: 3),
            ValidationSplit = options.ValidationFraction,
            ValidationFolder = arguments.String("--val-data"),
            Threads = arguments.OptionalInt("--threads", min: 1, max: 1024),
            Quiet = arguments.Flag("--quiet"),
            Plot = arguments.Flag("--plot"),
            Limit = arguments.OptionalInt("--limit", null, min: 2),
            Output = OutputPath.Check(arguments.String("--output") ?? shape.Output, "--output"),
            Force = arguments.Flag("--force"),
        };
        if (run.Channels == 2)
            throw new CliUsageException("option --channels must be 1 (grayscale) or 3 (RGB)");
        if (options.WarmupEpochs > options.Epochs)
            throw new CliUsageException(FormattableString.Invariant($"option --warmup ({options.WarmupEpochs}) must not exceed --epochs ({options.Epochs})"));
        if (options.CheckpointDirectory is { } checkpoints && File.Exists(checkpoints))
            throw new CliUsageException($"option --checkpoint-dir '{checkpoints}' is a file; give a folder (it is created if missing)");
        if (options.ResumeFrom is { } resume && !File.Exists(resume) && !Directory.Exists(resume))
            throw new CliUsageException($"option --resume '{resume}' does not exist; give the --checkpoint-dir folder of the run to continue, or one of its .cnnckpt files");
        if (options.DiscriminativeLearningRateRatio is not null && options.LayerDecay is not null)
            throw new CliUsageException("give either --lr-mult F or --layer-decay F, not both");
        if (run.ValidationFolder is not null && arguments.Given("--val-split"))
            throw new CliUsageException("give either --val-data <folder> or --val-split F, not both");
        if (options.EarlyStoppingPatience is not null && run.ValidationFolder is null && run.ValidationSplit <= 0)
            throw new CliUsageException("--patience needs validation data: --val-split F or --val-data <folder>");
        if (!run.Force && Cnn.MLNet.Persistence.CnnPipelineFile.IsReadOnly(run.Output))
            throw new CliUsageException($"option --output '{run.Output}' is a read-only file; give another file, make it writable, or add --force to replace it");
        if (run.Threads is { } threads)
        {
            Cnn.Backbones.Native.TorchRuntime.EnsureLoaded(); // the native library first (it may need the patched copy)
            TorchSharp.torch.set_num_threads(threads);
        }
        return run;
    }

    /// <summary>The optimisation and augmentation part of a run's description line.</summary>
    public string Describe()
    {
        var o = Options;
        return FormattableString.Invariant($"{o.Epochs} epochs of batch {o.BatchSize}, {(o.Optimizer == CnnOptimizer.Sgd ? "SGD" : "AdamW")} lr {o.LearningRate:G4} ({ScheduleName(o.Schedule)}") +
            (o.WarmupEpochs > 0 ? FormattableString.Invariant($", {o.WarmupEpochs:G3} warm-up epochs") : "") + "), " +
            (o.EarlyStoppingPatience is { } p ? FormattableString.Invariant($"early stopping after {p} epochs without improvement, ") : "") +
            Recipe(o) +
            $"augmentation {(!o.Augment ? "off" : o.AugmentMinScale >= 1 ? "flips" : FormattableString.Invariant($"on (crop scale {o.AugmentMinScale:G3}-1, flips)"))}";
    }

    /// <summary>An image size for messages: the number, or the model's configuration's when unset.</summary>
    public static string SizeText(int? size, int configured) => (size ?? configured).ToString(CultureInfo.InvariantCulture);

    /// <summary>The recipe options that are on, each followed by ", " (empty when none is).</summary>
    private static string Recipe(CnnFitOptions o)
    {
        var parts = new List<string>();
        if (o.FreezeEpochs > 0) parts.Add(FormattableString.Invariant($"{o.FreezeEpochs} head-only epochs first"));
        if (o.DiscriminativeLearningRateRatio is { } mult) parts.Add(FormattableString.Invariant($"stem at lr/{mult:G3}"));
        if (o.LayerDecay is { } decay) parts.Add(FormattableString.Invariant($"layer decay {decay:G3}"));
        if (o.LabelSmoothing > 0) parts.Add(FormattableString.Invariant($"label smoothing {o.LabelSmoothing:G3}"));
        if (o.MixupAlpha > 0) parts.Add(FormattableString.Invariant($"mixup {o.MixupAlpha:G3}"));
        if (o.CutMixAlpha > 0) parts.Add(FormattableString.Invariant($"CutMix {o.CutMixAlpha:G3}"));
        if (o.ModelEmaDecay is { } ema) parts.Add(FormattableString.Invariant($"weight average (decay {ema:G6})"));
        if (o.ClipGradNorm is { } clip) parts.Add(FormattableString.Invariant($"gradients clipped to norm {clip:G3}"));
        if (o.AccumulationSteps > 1) parts.Add(FormattableString.Invariant($"{o.AccumulationSteps} batches per step"));
        return string.Concat(parts.Select(p => p + ", "));
    }

    private static string ScheduleName(LearningRateScheduleKind schedule) => schedule switch
    {
        LearningRateScheduleKind.OneCycle => "one-cycle",
        LearningRateScheduleKind.Constant => "constant",
        _ => "cosine",
    };
}
