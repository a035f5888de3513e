using System.Globalization;
using Cnn.MLNet;
using Cnn.MLNet.Training;

namespace Cnn.Cli.Commands;

/// <summary>The defaults of the options that <c>cnn train</c> and <c>cnn distill</c> share; each verb has its own.</summary>
/// <param name="Epochs">Epochs.</param>
/// <param name="BatchSize">Batch size.</param>
/// <param name="LearningRate">Peak learning rate.</param>
/// <param name="ImageSize">Square input size, or null for the model's configuration.</param>
/// <param name="Channels">Input channels, or null for the verb's own rule.</param>
/// <param name="CropPct">Centre-crop fraction, or null for the model's configuration.</param>
/// <param name="Augment">Training augmentation on or off.</param>
/// <param name="MinScale">Smallest area fraction of the random resized crop.</param>
/// <param name="ValidationSplit">Fraction held out for validation.</param>
/// <param name="Output">Where the model is saved.</param>
internal sealed record FitDefaults(int Epochs, int BatchSize, double LearningRate, int? ImageSize, int? Channels, double? CropPct,
    bool Augment, double MinScale, double ValidationSplit, string Output);

/// <summary>
/// The options <c>cnn train</c> and <c>cnn distill</c> share (<c>--epochs</c>, <c>--batch-size</c>, <c>--lr</c>, <c>--image-size</c>,
/// <c>--channels</c>, <c>--crop-pct</c>, <c>--augment</c>, <c>--min-scale</c>, <c>--val-split</c>, <c>--seed</c>, <c>--limit</c>,
/// <c>--output</c>), parsed in one place.
/// </summary>
internal sealed record FitSettings
{
    /// <summary>The shared options, with <paramref name="defaults"/> in their descriptions when the verb has one set of defaults.</summary>
    public static IReadOnlyList<CliOption> Options(FitDefaults? defaults)
    {
        string Default(object? value) => defaults is null ? "" : value is null ? " (default: the model's)" : FormattableString.Invariant($" (default {value})");
        return
        [
            new("--epochs", "training epochs" + Default(defaults?.Epochs), "N", "-e"),
            CommonOptions.BatchSize("images per step" + Default(defaults?.BatchSize)),
            new("--lr", "peak learning rate of AdamW with cosine decay" + Default(defaults?.LearningRate), "F"),
            new("--image-size", "square input size in pixels" + Default(defaults?.ImageSize), "N"),
            new("--channels", "input channels: 1 (grey) or 3 (RGB)" + Default(defaults?.Channels), "1|3"),
            CommonOptions.CropPct,
            new("--augment", "random resized crops and flips" + Default(defaults is null ? null : defaults.Augment ? "on" : "off"), "on|off"),
            new("--min-scale", "smallest area fraction of the random resized crop; 1 = flips only" + Default(defaults?.MinScale), "F"),
            new("--val-split", "fraction held out for validation, stratified" + Default(defaults?.ValidationSplit), "F"),
            new("--val-data", "validation images: a folder per class (instead of --val-split)", "<folder>"),
            new("--patience", "stop after N epochs without validation improvement (needs validation data)", "N"),
            new("--opt", "optimizer: adamw or sgd (momentum 0.9) (default adamw)", "adamw|sgd"),
            new("--weight-decay", "decoupled weight decay (default 0.0001)", "F"),
            new("--warmup", "epochs of linear learning-rate warm-up, fractions allowed (default 0)", "F"),
            new("--sched", "learning-rate schedule: cosine, onecycle (PyTorch's OneCycleLR) or constant (default cosine)", "cosine|onecycle|constant"),
            new("--smoothing", "label smoothing of the cross-entropy (default 0)", "F"),
            new("--mixup", "mixup alpha: blend each batch with its reverse, lambda ~ Beta(alpha, alpha) (default 0 = off; timm uses 0.8)", "F"),
            new("--cutmix", "CutMix alpha: paste a box from the reversed batch (default 0 = off; timm uses 1.0)", "F"),
            new("--mixup-prob", "probability that a batch is mixed (default 1)", "F"),
            new("--mixup-switch-prob", "with --mixup and --cutmix: probability of CutMix for a mixed batch (default 0.5)", "F"),
            new("--model-ema", "keep an exponential moving average of the weights (timm's ModelEmaV2); validate and save it"),
            new("--model-ema-decay", "decay of the weight average (default 0.9998, timm's; about 0.99-0.999 suits short runs); implies --model-ema", "F"),
            new("--clip-grad", "clip the gradients' global L2 norm to F before each step (default: no clipping)", "F"),
            new("--accum-steps", "batches whose gradients are summed into one optimizer step (default 1)", "N"),
            new("--freeze-epochs", "first train only the head for N epochs, then everything with discriminative rates (fastai's fine_tune) (default 0)", "N"),
            new("--lr-mult", "discriminative rates: the stem trains at lr/F rising geometrically to lr at the head (fastai's lr_mult; default 100 after --freeze-epochs, else 1)", "F"),
            new("--layer-decay", "timm's layer-wise rate decay: stage i of G trains at lr * F^(G-1-i) (instead of --lr-mult)", "F"),
            new("--checkpoint-dir", "write the training state to this folder after every epoch, atomically (see --resume)", "<folder>"),
            new("--checkpoint-every", "also write a checkpoint every N optimizer steps", "N"),
            new("--keep-checkpoints", "checkpoints kept in --checkpoint-dir, newest first (default 3)", "N"),
            new("--resume", "continue the run of this checkpoint file, or of the newest whole checkpoint in this folder (same data and options)", "<folder|file>"),
            new("--decay-norm-bias", "apply weight decay to biases and normalisation weights too (default: not, as timm)"),
            new("--sync-bn", "under mpirun: normalise BatchNorm with the statistics of all ranks' batches together (SyncBatchNorm; default: each rank's own, as DDP)"),
            new("--device", "where the network runs: auto, cpu or cuda (default auto)", "auto|cpu|cuda"),
            .. ComputeOptions.TrainingOptions,
            new("--threads", "CPU threads of the network's operations (default: all cores)", "N"),
            new("--seed", "seed of initialisation, shuffling, augmentation and the split (default 0)", "N"),
            new("--skip-corrupt", "skip images that cannot be decoded (and report how many) instead of failing"),
            new("--quiet", "no progress bar: one line per epoch only", Alias: "-q"),
            new("--plot", "also draw the loss, accuracy and learning-rate curves to a PNG beside the model (model.curves.png)"),
            CommonOptions.Limit,
            CommonOptions.Output("where the model is saved" + Default(defaults?.Output)),
            new("--force", "replace the output file even when it is read-only"),
        ];
    }

    /// <summary>Epochs.</summary>
    public int Epochs { get; init; }

    /// <summary>Every epoch of the run: the head-only ones first, then <see cref="Epochs"/>.</summary>
    public int TotalEpochs => FreezeEpochs + Epochs;

    /// <summary>Batch size.</summary>
    public int BatchSize { get; init; }

    /// <summary>Peak learning rate (AdamW, cosine decay).</summary>
    public double LearningRate { get; init; }

    /// <summary>Square input size, or null for the model's configuration.</summary>
    public int? ImageSize { get; init; }

    /// <summary>Input channels (1 or 3), or null for the verb's own rule.</summary>
    public int? Channels { get; init; }

    /// <summary>Centre-crop fraction, or null for the model's configuration.</summary>
    public double? CropPct { get; init; }

    /// <summary>Training augmentation (random resized crop + flip).</summary>
    public bool Augment { get; init; }

    /// <summary>Smallest area fraction of the random resized crop (1 = no cropping: horizontal flips only).</summary>
    public double MinScale { get; init; }

    /// <summary>Fraction of the training images held out for validation (stratified, seeded); 0 for none.</summary>
    public double ValidationSplit { get; init; }

    /// <summary>Seed of initialisation, shuffling, augmentation and the split.</summary>
    public int Seed { get; init; }

    /// <summary>A folder per class of validation images, or null.</summary>
    public string? ValidationFolder { get; init; }

    /// <summary>Early-stopping patience in epochs, or null.</summary>
    public int? Patience { get; init; }

    /// <summary>The optimizer.</summary>
    public CnnOptimizer Optimizer { get; init; }

    /// <summary>Decoupled weight decay.</summary>
    public double WeightDecay { get; init; }

    /// <summary>Warm-up epochs.</summary>
    public double WarmupEpochs { get; init; }

    /// <summary>The learning-rate schedule.</summary>
    public LearningRateScheduleKind Schedule { get; init; }

    /// <summary>Where the network runs.</summary>
    public CnnDevice Device { get; init; }

    /// <summary>The arithmetic (<c>--precision</c>).</summary>
    public CnnPrecision Precision { get; init; }

    /// <summary>The activation layout (<c>--memory-format</c>).</summary>
    public CnnMemoryFormat MemoryFormat { get; init; }

    /// <summary>What runs inference (<c>--engine</c>).</summary>
    public CnnInferenceEngine InferenceEngine { get; init; }

    /// <summary>Label smoothing.</summary>
    public double Smoothing { get; init; }

    /// <summary>Mixup α (0 = off).</summary>
    public double Mixup { get; init; }

    /// <summary>CutMix α (0 = off).</summary>
    public double CutMix { get; init; }

    /// <summary>Probability that a batch is mixed.</summary>
    public double MixupProbability { get; init; }

    /// <summary>Probability of CutMix for a mixed batch when both are on.</summary>
    public double MixupSwitchProbability { get; init; }

    /// <summary>Decay of the weight average, or null for none.</summary>
    public double? ModelEmaDecay { get; init; }

    /// <summary>Gradient clipping norm, or null.</summary>
    public double? ClipGrad { get; init; }

    /// <summary>Gradient accumulation steps.</summary>
    public int AccumulationSteps { get; init; }

    /// <summary>Head-only epochs first.</summary>
    public int FreezeEpochs { get; init; }

    /// <summary>Discriminative learning-rate ratio, or null.</summary>
    public double? LearningRateMultiplier { get; init; }

    /// <summary>Layer-wise learning-rate decay, or null.</summary>
    public double? LayerDecay { get; init; }

    /// <summary>Weight decay on biases and norm weights too.</summary>
    public bool DecayNormAndBias { get; init; }

    /// <summary>Checkpoint folder, or null.</summary>
    public string? CheckpointDirectory { get; init; }

    /// <summary>Steps between mid-epoch checkpoints, or null.</summary>
    public int? CheckpointEvery { get; init; }

    /// <summary>Checkpoints kept.</summary>
    public int CheckpointsKept { get; init; }

    /// <summary>Checkpoint file or folder to resume from, or null.</summary>
    public string? Resume { get; init; }

    /// <summary>CPU threads of the network's operations, or null for libtorch's default.</summary>
    public int? Threads { get; init; }

    /// <summary>Synchronised BatchNorm under mpirun.</summary>
    public bool SyncBatchNorm { get; init; }

    /// <summary>Skip undecodable images instead of failing.</summary>
    public bool SkipCorrupt { get; init; }

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

    /// <summary>Reads the shared options, with the verb's <paramref name="defaults"/>.</summary>
    public static FitSettings Parse(CliArguments arguments, FitDefaults defaults)
    {
        var settings = new FitSettings
        {
            Epochs = arguments.Int("--epochs", defaults.Epochs, min: 1),
            BatchSize = arguments.Int("--batch-size", defaults.BatchSize, min: 2),
            LearningRate = arguments.Double("--lr", defaults.LearningRate, min: 1e-8, max: 10)!.Value,
            ImageSize = arguments.OptionalInt("--image-size", defaults.ImageSize, min: 8, max: 4096),
            Channels = arguments.OptionalInt("--channels", defaults.Channels, min: 1, max: 3),
            CropPct = arguments.Double("--crop-pct", defaults.CropPct, min: 0.01, max: 1),
            Augment = arguments.Switch("--augment", defaults.Augment),
            MinScale = arguments.Double("--min-scale", defaults.MinScale, min: 0.01, max: 1)!.Value,
            ValidationSplit = arguments.Double("--val-split", defaults.ValidationSplit, min: 0, max: 0.9)!.Value,
            Seed = arguments.Int("--seed", 0),
            ValidationFolder = arguments.String("--val-data"),
            Patience = arguments.OptionalInt("--patience", min: 1),
            Optimizer = arguments.String("--opt") switch
            {
                null or "adamw" => CnnOptimizer.AdamW,
                "sgd" => CnnOptimizer.Sgd,
                var other => throw new CliUsageException($"option --opt must be adamw or sgd, got '{other}'"),
            },
            WeightDecay = arguments.Double("--weight-decay", 1e-4, min: 0, max: 10)!.Value,
            WarmupEpochs = arguments.Double("--warmup", 0, min: 0, max: 1e6)!.Value,
            Schedule = arguments.String("--sched") switch
            {
                null or "cosine" => LearningRateScheduleKind.Cosine,
                "onecycle" => LearningRateScheduleKind.OneCycle,
                "constant" => LearningRateScheduleKind.Constant,
                var other => throw new CliUsageException($"option --sched must be cosine, onecycle or constant, got '{other}'"),
            },
            Device = arguments.String("--device") switch
            {
                null or "auto" => CnnDevice.Auto,
                "cpu" => CnnDevice.Cpu,
                "cuda" => CnnDevice.Cuda,
                var other => throw new CliUsageException($"option --device must be auto, cpu or cuda, got '{other}'"),
            },
            Precision = ComputeOptions.Precision(arguments, training: true),
            MemoryFormat = ComputeOptions.MemoryFormat(arguments, training: true),
            InferenceEngine = ComputeOptions.Engine(arguments),
            Threads = arguments.OptionalInt("--threads", min: 1, max: 1024),
            Smoothing = arguments.Double("--smoothing", 0, min: 0, max: 0.99)!.Value,
            Mixup = arguments.Double("--mixup", 0, min: 0, max: 100)!.Value,
            CutMix = arguments.Double("--cutmix", 0, min: 0, max: 100)!.Value,
            MixupProbability = arguments.Double("--mixup-prob", 1, min: 0, max: 1)!.Value,
            MixupSwitchProbability = arguments.Double("--mixup-switch-prob", 0.5, min: 0, max: 1)!.Value,
            ModelEmaDecay = arguments.Double("--model-ema-decay", arguments.Flag("--model-ema") ? 0.9998 : null, min: 0.5, max: 0.999999),
            ClipGrad = arguments.Double("--clip-grad", null, min: 1e-8, max: 1e9),
            AccumulationSteps = arguments.Int("--accum-steps", 1, min: 1, max: 1024),
            FreezeEpochs = arguments.Int("--freeze-epochs", 0, min: 0, max: 100000),
            LearningRateMultiplier = arguments.Double("--lr-mult", null, min: 1, max: 1e6),
            LayerDecay = arguments.Double("--layer-decay", null, min: 0.01, max: 1),
            DecayNormAndBias = arguments.Flag("--decay-norm-bias"),
            SyncBatchNorm = arguments.Flag("--sync-bn"),
            CheckpointDirectory = arguments.String("--checkpoint-dir"),
            CheckpointEvery = arguments.OptionalInt("--checkpoint-every", min: 1),
            CheckpointsKept = arguments.Int("--keep-checkpoints", 3, min: 1, max: 10000),
            Resume = arguments.String("--resume"),
            SkipCorrupt = arguments.Flag("--skip-corrupt"),
            Quiet = arguments.Flag("--quiet"),
            Plot = arguments.Flag("--plot"),
            Limit = arguments.OptionalInt("--limit", null, min: 2),
            Output = OutputPath.Check(arguments.String("--output") ?? defaults.Output, "--output"),
            Force = arguments.Flag("--force"),
        };
        if (settings.Channels == 2)
            throw new CliUsageException("option --channels must be 1 (grayscale) or 3 (RGB)");
        if (settings.WarmupEpochs > settings.Epochs)
            throw new CliUsageException(FormattableString.Invariant($"option --warmup ({settings.WarmupEpochs}) must not exceed --epochs ({settings.Epochs})"));
        if (settings.CheckpointDirectory is { } checkpoints && File.Exists(checkpoints))
            throw new CliUsageException($"option --checkpoint-dir '{checkpoints}' is a file; give a folder (it is created if missing)");
        if (settings.Resume is { } resume && !File.Exists(resume) && !Directory.Exists(resume))
            throw new CliUsageException($"option --resume '{resume}' does not exist; give the --checkpoint-dir folder of the run to continue, or one of its .cnnckpt files");
        if (settings.LearningRateMultiplier is not null && settings.LayerDecay is not null)
            throw new CliUsageException("give either --lr-mult F or --layer-decay F, not both");
        if (settings.ValidationFolder is not null && arguments.String("--val-split") is not null)
            throw new CliUsageException("give either --val-data <folder> or --val-split F, not both");
        if (settings.Patience is not null && settings.ValidationFolder is null && settings.ValidationSplit <= 0)
            throw new CliUsageException("--patience needs validation data: --val-split F or --val-data <folder>");
        if (!settings.Force && Cnn.MLNet.Persistence.CnnPipelineFile.IsReadOnly(settings.Output))
            throw new CliUsageException($"option --output '{settings.Output}' is a read-only file; give another file, make it writable, or add --force to replace it");
        if (settings.Threads is { } threads)
        {
            Cnn.Backbones.Native.TorchRuntime.EnsureLoaded(); // the native library first (it may need the patched copy)
            TorchSharp.torch.set_num_threads(threads);
        }
        return settings;
    }

    /// <summary>Sets the shared fit options: epochs, batch, AdamW at the learning rate, crop, augmentation, seed, device.</summary>
    public void ApplyTo(CnnFitOptions options)
    {
        options.Epochs = Epochs;
        options.BatchSize = BatchSize;
        options.LearningRate = LearningRate;
        options.Optimizer = Optimizer;
        options.WeightDecay = WeightDecay;
        options.WarmupEpochs = WarmupEpochs;
        options.Schedule = Schedule;
        options.EarlyStoppingPatience = Patience;
        options.CropPct = CropPct;
        options.Augment = Augment;
        options.AugmentMinScale = MinScale;
        options.Seed = Seed;
        options.SkipCorruptImages = SkipCorrupt;
        options.Device = Device;
        options.Precision = Precision;
        options.MemoryFormat = MemoryFormat;
        options.InferenceEngine = InferenceEngine;
        options.LabelSmoothing = Smoothing;
        options.MixupAlpha = Mixup;
        options.CutMixAlpha = CutMix;
        options.MixupProbability = MixupProbability;
        options.MixupSwitchProbability = MixupSwitchProbability;
        options.ModelEmaDecay = ModelEmaDecay;
        options.ClipGradNorm = ClipGrad;
        options.AccumulationSteps = AccumulationSteps;
        options.FreezeEpochs = FreezeEpochs;
        options.DiscriminativeLearningRateRatio = LearningRateMultiplier;
        options.LayerDecay = LayerDecay;
        options.DecayNormAndBias = DecayNormAndBias;
        options.SyncBatchNorm = SyncBatchNorm;
        options.CheckpointDirectory = CheckpointDirectory;
        options.CheckpointEverySteps = CheckpointEvery;
        options.CheckpointsKept = CheckpointsKept;
        options.ResumeFrom = Resume;
    }

    /// <summary>The optimisation and augmentation part of a run's description line.</summary>
    public string Describe() =>
        FormattableString.Invariant($"{Epochs} epochs of batch {BatchSize}, {(Optimizer == CnnOptimizer.Sgd ? "SGD" : "AdamW")} lr {LearningRate:G4} ({ScheduleName}") +
        (WarmupEpochs > 0 ? FormattableString.Invariant($", {WarmupEpochs:G3} warm-up epochs") : "") + "), " +
        (Patience is { } p ? FormattableString.Invariant($"early stopping after {p} epochs without improvement, ") : "") +
        Recipe() +
        $"augmentation {(!Augment ? "off" : MinScale >= 1 ? "flips" : FormattableString.Invariant($"on (crop scale {MinScale:G3}-1, flips)"))}";

    /// <summary>The recipe options that are on, each followed by ", " (empty when none is).</summary>
    private string Recipe()
    {
        var parts = new List<string>();
        if (FreezeEpochs > 0) parts.Add(FormattableString.Invariant($"{FreezeEpochs} head-only epochs first"));
        if (LearningRateMultiplier is { } mult) parts.Add(FormattableString.Invariant($"stem at lr/{mult:G3}"));
        if (LayerDecay is { } decay) parts.Add(FormattableString.Invariant($"layer decay {decay:G3}"));
        if (Smoothing > 0) parts.Add(FormattableString.Invariant($"label smoothing {Smoothing:G3}"));
        if (Mixup > 0) parts.Add(FormattableString.Invariant($"mixup {Mixup:G3}"));
        if (CutMix > 0) parts.Add(FormattableString.Invariant($"CutMix {CutMix:G3}"));
        if (ModelEmaDecay is { } ema) parts.Add(FormattableString.Invariant($"weight average (decay {ema:G6})"));
        if (ClipGrad is { } clip) parts.Add(FormattableString.Invariant($"gradients clipped to norm {clip:G3}"));
        if (AccumulationSteps > 1) parts.Add(FormattableString.Invariant($"{AccumulationSteps} batches per step"));
        return string.Concat(parts.Select(p => p + ", "));
    }

    private string ScheduleName => Schedule switch
    {
        LearningRateScheduleKind.OneCycle => "one-cycle",
        LearningRateScheduleKind.Constant => "constant",
        _ => "cosine",
    };

    /// <summary>An image size for messages: the number, or the model's configuration's when unset.</summary>
    public static string SizeText(int? size, int configured) => (size ?? configured).ToString(CultureInfo.InvariantCulture);
}
