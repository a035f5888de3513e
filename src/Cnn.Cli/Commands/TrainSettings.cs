using System.Globalization;
using Cnn.Cli.Data;
using Cnn.MLNet;

namespace Cnn.Cli.Commands;

/// <summary>
/// The options of <c>cnn train</c> with their defaults: tuned for a quick CPU run on Fashion-MNIST when no <c>--data</c> is given,
/// the model's pretrained configuration (3 channels, random resized crops and flips) for an image folder.
/// </summary>
internal sealed record TrainSettings
{
    /// <summary>Fashion-MNIST default: epochs.</summary>
    public const int FashionEpochs = 10;

    /// <summary>Fashion-MNIST default: square input size (the images' own 28 px: no resampling with crop 1).</summary>
    public const int FashionImageSize = 28;

    /// <summary>Fashion-MNIST default: batch size.</summary>
    public const int FashionBatchSize = 128;

    /// <summary>Fashion-MNIST default: smallest crop area fraction, 1 = no cropping, so the augmentation is horizontal flips only.</summary>
    public const double FashionMinScale = 1.0;

    /// <summary>Fashion-MNIST default: AdamW peak learning rate.</summary>
    public const double FashionLearningRate = 2e-3;

    /// <summary>Registered architecture.</summary>
    public required string Model { get; init; }

    /// <summary>Folder per class or of Fashion-MNIST IDX files, or null for the built-in Fashion-MNIST.</summary>
    public string? DataFolder { get; init; }

    /// <summary>Pretrained weights to start from, or null.</summary>
    public string? Weights { get; init; }

    /// <summary>Freeze mode.</summary>
    public FreezeMode Freeze { get; init; }

    /// <summary>Last frozen stage with <see cref="FreezeMode.UpToStage"/>.</summary>
    public int FreezeUpToStage { get; init; }

    /// <summary>Epochs.</summary>
    public int Epochs { get; init; }

    /// <summary>Batch size.</summary>
    public int BatchSize { get; init; }

    /// <summary>Peak learning rate (AdamW, cosine decay).</summary>
    public double LearningRate { get; init; }

    /// <summary>Square input size, or null for the model's configuration.</summary>
    public int? ImageSize { get; init; }

    /// <summary>Input channels (1 or 3).</summary>
    public int Channels { get; init; }

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

    /// <summary>Cap on images per source split (class-balanced), or null.</summary>
    public int? Limit { get; init; }

    /// <summary>Where the pipeline is saved.</summary>
    public required string Output { get; init; }

    /// <summary>Reads the options of <c>cnn train</c>.</summary>
    public static TrainSettings Parse(CliArguments arguments)
    {
        string? data = arguments.String("--data");
        bool fashion = data is null || DataSources.IsIdxFolder(data);
        var (freeze, stage) = ParseFreeze(arguments.String("--freeze") ?? "none");
        var settings = new TrainSettings
        {
            Model = arguments.String("--model") ?? "resnet18",
            DataFolder = data,
            Weights = arguments.String("--weights"),
            Freeze = freeze,
            FreezeUpToStage = stage,
            Epochs = arguments.Int("--epochs", fashion ? FashionEpochs : 5, min: 1),
            BatchSize = arguments.Int("--batch-size", fashion ? FashionBatchSize : 32, min: 2),
            LearningRate = arguments.Double("--lr", fashion ? FashionLearningRate : 1e-3, min: 1e-8, max: 10)!.Value,
            ImageSize = NullableInt(arguments, "--image-size", 8, 4096) ?? (fashion ? FashionImageSize : null),
            Channels = arguments.Int("--channels", fashion ? 1 : 3, min: 1, max: 3),
            CropPct = arguments.Double("--crop-pct", fashion ? 1.0 : null, min: 0.01, max: 1),
            Augment = ParseSwitch(arguments.String("--augment"), "--augment", fallback: true),
            MinScale = arguments.Double("--min-scale", fashion ? FashionMinScale : 0.08, min: 0.01, max: 1)!.Value,
            ValidationSplit = arguments.Double("--val-split", 0.1, min: 0, max: 0.9)!.Value,
            Seed = arguments.Int("--seed", 0),
            Limit = NullableInt(arguments, "--limit", 2, int.MaxValue),
            Output = arguments.String("--output") ?? "model.zip",
        };
        arguments.EnsureAllRead();
        if (arguments.Positionals.Count > 0)
            throw new CliUsageException($"unexpected argument '{arguments.Positionals[0]}' (give the image folder with --data)");
        if (settings.Channels == 2)
            throw new CliUsageException("option --channels must be 1 (grayscale) or 3 (RGB)");
        if (settings.Freeze != FreezeMode.None && settings.Weights is null)
            throw new CliUsageException("--freeze needs --weights: freezing randomly initialised layers would leave them untrained");
        return settings;
    }

    /// <summary>The trainer options these settings give (callbacks and validation data are added by the caller).</summary>
    public CnnTrainerOptions ToTrainerOptions() => new()
    {
        Architecture = Model,
        WeightsPath = Weights,
        Freeze = Freeze,
        FreezeUpToStage = FreezeUpToStage,
        Epochs = Epochs,
        BatchSize = BatchSize,
        LearningRate = LearningRate,
        Optimizer = CnnOptimizer.AdamW,
        ImageSize = ImageSize,
        InputChannels = Channels,
        CropPct = CropPct,
        Augment = Augment,
        AugmentMinScale = MinScale,
        Seed = Seed,
        Device = CnnDevice.Auto,
    };

    /// <summary>One line describing the run's hyper-parameters.</summary>
    public string Describe()
    {
        string size = ImageSize is { } s ? s.ToString(CultureInfo.InvariantCulture) : "per model";
        string start = Weights is null ? "from scratch" : $"from '{Weights}'";
        string freeze = Freeze switch
        {
            FreezeMode.Backbone => ", backbone frozen",
            FreezeMode.UpToStage => FormattableString.Invariant($", frozen up to stage {FreezeUpToStage}"),
            _ => "",
        };
        return FormattableString.Invariant(
            $"{Model}, {Channels} channel(s), image size {size}, {Epochs} epochs of batch {BatchSize}, AdamW lr {LearningRate:G4} (cosine), ") +
            $"augmentation {(!Augment ? "off" : MinScale >= 1 ? "flips" : FormattableString.Invariant($"on (crop scale {MinScale:G3}-1, flips)"))}, {start}{freeze}";
    }

    private static (FreezeMode Mode, int Stage) ParseFreeze(string text) => text switch
    {
        "none" => (FreezeMode.None, 0),
        "backbone" => (FreezeMode.Backbone, 0),
        _ when int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int stage) && stage >= 0 => (FreezeMode.UpToStage, stage),
        _ => throw new CliUsageException($"option --freeze must be none, backbone or a stage index (0 = stem, 1 = stem + first stage, …), got '{text}'"),
    };

    private static bool ParseSwitch(string? text, string name, bool fallback) => text switch
    {
        null => fallback,
        "on" or "true" or "yes" => true,
        "off" or "false" or "no" => false,
        _ => throw new CliUsageException($"option {name} must be on or off, got '{text}'"),
    };

    private static int? NullableInt(CliArguments arguments, string name, int min, int max)
    {
        int value = arguments.Int(name, int.MinValue, min, max);
        return value == int.MinValue ? null : value;
    }
}
