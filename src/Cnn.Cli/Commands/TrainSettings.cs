using System.Globalization;
using Cnn.Cli.Data;
using Cnn.Backbones.Models;
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

    /// <summary>
    /// Folder defaults split models at this many parameters: smaller ones (LeNet-5) train best with flips only and a higher rate,
    /// larger ones with milder random crops (the README's folder sweep, <c>tools/folder-defaults-sweep.sh</c>).
    /// </summary>
    public const long SmallModelParameters = 1_000_000;

    /// <summary>Sets the defaults with <c>--data &lt;folder per class&gt;</c> for <paramref name="model"/>: 5 epochs of batch 32, cosine;
    /// from scratch lr 0.006 and flips only for a small model, lr 0.003 and crops of 0.75–1 of the area otherwise; lr 0.001 from
    /// pretrained weights; a tenth held out for validation.</summary>
    public static void FolderDefaults(CnnFitOptions options, string model, bool pretrained)
    {
        bool small = ModelRegistry.Get(model).ParameterCount < SmallModelParameters;
        options.Epochs = 5;
        options.BatchSize = 32;
        options.LearningRate = pretrained ? 1e-3 : small ? 6e-3 : 3e-3;
        options.Augment = true;
        options.AugmentMinScale = small ? 1.0 : 0.75;
        options.ValidationFraction = 0.1;
    }

    /// <summary>Sets the Fashion-MNIST defaults (see the constants).</summary>
    public static void FashionDefaults(CnnFitOptions options)
    {
        options.Epochs = FashionEpochs;
        options.BatchSize = FashionBatchSize;
        options.LearningRate = FashionLearningRate;
        options.CropPct = 1.0;
        options.Augment = true;
        options.AugmentMinScale = FashionMinScale;
        options.ValidationFraction = 0.1;
    }

    /// <summary>The declared options whose defaults depend on the data (see the verb's details), listed without one.</summary>
    private static readonly HashSet<string> DataDependent = new(StringComparer.Ordinal)
    {
        "--epochs", "--batch-size", "--lr", "--crop-pct", "--augment", "--min-scale", "--val-split",
    };

    /// <summary>Fashion-MNIST default: smallest crop area fraction, 1 = no cropping, so the augmentation is horizontal flips only.</summary>
    public const double FashionMinScale = 1.0;

    /// <summary>Fashion-MNIST default: AdamW peak learning rate.</summary>
    public const double FashionLearningRate = 2e-3;

    /// <summary>The options of <c>cnn train</c> (their defaults depend on the data: see the verb's details).</summary>
    public static IReadOnlyList<CliOption> Options { get; } =
    [
        CommonOptions.Model("registered architecture (default resnet18)"),
        new("--data", "a folder per class, or of Fashion-MNIST IDX files (default: Fashion-MNIST)", "<folder>"),
        CommonOptions.Weights("weights to start from: " + CommonOptions.WeightsForms + " (default: random)"),
        CommonOptions.Pretrained,
        new("--freeze", "none, backbone, or the last frozen stage's index (needs --weights or --pretrained)", "none|backbone|<stage>"),
        .. FitRun.CliOptions(new CnnTrainerOptions(), DataDependent, null),
    ];

    /// <summary>Registered architecture.</summary>
    public required string Model { get; init; }

    /// <summary>Folder per class or of Fashion-MNIST IDX files, or null for the built-in Fashion-MNIST.</summary>
    public string? DataFolder { get; init; }

    /// <summary>Pretrained weights to start from (a name such as <c>DEFAULT</c>, an <c>hf-hub:</c> name, or a file), or null.</summary>
    public string? Weights { get; init; }

    /// <summary>Freeze mode.</summary>
    public FreezeMode Freeze { get; init; }

    /// <summary>Last frozen stage with <see cref="FreezeMode.UpToStage"/>.</summary>
    public int FreezeUpToStage { get; init; }


    /// <summary>The run: the trainer options the command line gave and the options <c>cnn train</c> shares with <c>cnn distill</c>.</summary>
    public required FitRun Fit { get; init; }

    /// <summary>Input channels (1 or 3).</summary>
    public int Channels => Fit.Channels ?? 3;

    /// <summary>Reads the options of <c>cnn train</c>.</summary>
    public static TrainSettings Parse(CliArguments arguments)
    {
        string? data = arguments.String("--data");
        bool fashion = data is null || DataSources.IsIdxFolder(data);
        var (freeze, stage) = ParseFreeze(arguments.String("--freeze") ?? "none");
        string model = CliApp.RequireModel(arguments.String("--model") ?? Cnn.MLNet.CnnTrainerOptions.DefaultArchitecture);
        var options = new CnnTrainerOptions();
        if (fashion) FashionDefaults(options);
        else FolderDefaults(options, model, pretrained: CommonOptions.WeightsOf(arguments) is not null);
        var shape = fashion ? new FitShape(FashionImageSize, 1, "model.zip") : new FitShape(null, 3, "model.zip");
        var settings = new TrainSettings
        {
            Model = model,
            DataFolder = data,
            Weights = CommonOptions.WeightsOf(arguments),
            Freeze = freeze,
            FreezeUpToStage = stage,
            Fit = FitRun.Parse(arguments, options, shape),
        };
        if (settings.Fit.Options is CnnTrainerOptions { CacheDirectory: { } cache } && File.Exists(cache))
            throw new CliUsageException($"option --cache-dir '{cache}' is a file; give a folder (it is created if missing)");
        if (settings.Freeze != FreezeMode.None && settings.Weights is null)
            throw new CliUsageException("--freeze needs --weights or --pretrained: freezing randomly initialised layers would leave them untrained");
        return settings;
    }

    /// <summary>The trainer options these settings give (callbacks and validation data are added by the caller); the same instance on every call.</summary>
    public CnnTrainerOptions ToTrainerOptions()
    {
        var options = (CnnTrainerOptions)Fit.Options;
        options.Architecture = Model;
        options.Model = new ModelOptions { Weights = Weights, InChannels = Channels, ImageSize = Fit.ImageSize };
        options.Freeze = Freeze;
        options.FreezeUpToStage = FreezeUpToStage;
        options.ValidationFraction = 0; // the verb splits the data itself (--val-split) or takes --val-data, and reports the counts
        return options;
    }

    /// <summary>One line describing the run's hyper-parameters.</summary>
    public string Describe()
    {
        string size = FitRun.SizeText(Fit.ImageSize, ModelRegistry.Get(Model).DefaultConfig.InputSize.Height);
        string start = Weights is null ? "from scratch" : $"from '{Weights}'";
        string freeze = Freeze switch
        {
            FreezeMode.Backbone => ", backbone frozen",
            FreezeMode.UpToStage => FormattableString.Invariant($", frozen up to stage {FreezeUpToStage}"),
            _ => "",
        };
        return FormattableString.Invariant($"{Model}, {Channels} channel(s), image size {size}, ") + Fit.Describe() + $", {start}{freeze}";
    }

    private static (FreezeMode Mode, int Stage) ParseFreeze(string text) => text switch
    {
        "none" => (FreezeMode.None, 0),
        "backbone" => (FreezeMode.Backbone, 0),
        _ when int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int stage) && stage >= 0 => (FreezeMode.UpToStage, stage),
        _ => throw new CliUsageException($"option --freeze must be none, backbone or a stage index (0 = stem, 1 = stem + first stage, …), got '{text}'"),
    };
}
