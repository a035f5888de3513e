using Cnn.MLNet.Training;
using Microsoft.ML;

namespace Cnn.MLNet;

/// <summary>Which parameters of the backbone stay fixed while fine-tuning.</summary>
public enum FreezeMode
{
    /// <summary>Train every parameter.</summary>
    None,

    /// <summary>Train only the classifier head (linear probing); the whole backbone is frozen.</summary>
    Backbone,

    /// <summary>Freeze the stem and the stages up to and including <see cref="CnnTrainerOptions.FreezeUpToStage"/>.</summary>
    UpToStage,
}

/// <summary>The optimizer used for fine-tuning.</summary>
public enum CnnOptimizer
{
    /// <summary>AdamW (decoupled weight decay).</summary>
    AdamW,

    /// <summary>Stochastic gradient descent with (Nesterov-free) momentum.</summary>
    Sgd,
}

/// <summary>Where the network runs.</summary>
public enum CnnDevice
{
    /// <summary>CUDA when the CUDA backend is built in and a GPU is present, otherwise CPU.</summary>
    Auto,

    /// <summary>The CPU.</summary>
    Cpu,

    /// <summary>The first CUDA GPU; fails clearly when none is available.</summary>
    Cuda,
}

/// <summary>Metric that early stopping and best-epoch selection watch.</summary>
public enum EarlyStoppingMetric
{
    /// <summary>Validation loss (lower is better).</summary>
    ValidationLoss,

    /// <summary>Validation accuracy (higher is better).</summary>
    ValidationAccuracy,
}

/// <summary>Options of <see cref="CnnTrainer"/>: fine-tuning a registered CNN backbone as an ML.NET multiclass trainer.</summary>
public sealed class CnnTrainerOptions : CnnFitOptions
{
    /// <summary>Registered architecture name (e.g. <c>resnet50</c>). Set by the <see cref="CnnTrainer"/> factories.</summary>
    public string Architecture { get; set; } = "resnet18";

    /// <summary>Label column: a key type, as <c>MapValueToKey</c> produces. Default <c>Label</c>.</summary>
    public string LabelColumnName { get; set; } = "Label";

    /// <summary>Pretrained weights (<c>.pth</c> or <c>.safetensors</c> from torchvision/timm), or null to train from scratch.
    /// The classifier is replaced when the class count differs; 3-channel first-conv weights are adapted to <see cref="InputChannels"/>.</summary>
    public string? WeightsPath { get; set; }

    /// <summary>Which parameters stay fixed. Frozen BatchNorm layers stay in eval mode so their running statistics do not move.</summary>
    public FreezeMode Freeze { get; set; } = FreezeMode.None;

    /// <summary>With <see cref="FreezeMode.UpToStage"/>: the last frozen stage (0 = stem only, 1 = stem and first stage, …).</summary>
    public int FreezeUpToStage { get; set; }

    /// <summary>Validation data (same schema as the training data), or null.</summary>
    public IDataView? ValidationSet { get; set; }

    /// <summary>Without <see cref="ValidationSet"/>: fraction of the training rows held out for validation (stratified, seeded). Default 0.</summary>
    public double ValidationFraction { get; set; }

    /// <summary>Stop when the watched metric has not improved for this many epochs (null = never stop early). Needs validation data.</summary>
    public int? EarlyStoppingPatience { get; set; }

    /// <summary>Metric watched by early stopping; the best epoch's weights are kept when validation data is present.</summary>
    public EarlyStoppingMetric EarlyStoppingMetric { get; set; } = EarlyStoppingMetric.ValidationLoss;

    /// <summary>Input channels: 3 (RGB) or 1 (grayscale images such as Fashion-MNIST). Default 3.</summary>
    public int InputChannels { get; set; } = 3;

    /// <summary>
    /// Dropout before the classifier, in [0, 1). Default null: the architecture's own value (torchvision's per-variant dropout,
    /// e.g. 0.2 for MobileNet and EfficientNet-B0; 0 for ResNet).
    /// </summary>
    public double? DropRate { get; set; }

    /// <summary>GoogLeNet / Inception v3: build and train the auxiliary classifiers (null = the architecture's default).</summary>
    public bool? AuxLogits { get; set; }

    /// <summary>Loss weight of each auxiliary classifier (null = torchvision's: 0.3 for GoogLeNet, 0.4 for Inception v3).</summary>
    public double? AuxLossWeight { get; set; }

    /// <summary>GoogLeNet / Inception v3: torchvision's <c>transform_input</c> (null = the architecture's default).</summary>
    public bool? TransformInput { get; set; }

    /// <summary>Called after every epoch with its metrics.</summary>
    public Action<EpochMetrics>? EpochCompleted { get; set; }

    /// <summary>Checks every value; throws <see cref="ArgumentOutOfRangeException"/> naming the option and the allowed range.</summary>
    public void Validate()
    {
        ValidateShared(InputChannels);
        Check(!string.IsNullOrWhiteSpace(Architecture), nameof(Architecture), Architecture, "must name a registered architecture");
        Check(ValidationFraction >= 0 && ValidationFraction < 1, nameof(ValidationFraction), ValidationFraction, "must be in [0, 1)");
        Check(EarlyStoppingPatience is null || EarlyStoppingPatience >= 1, nameof(EarlyStoppingPatience), EarlyStoppingPatience, "must be >= 1 or null");
        Check(EarlyStoppingPatience is null || ValidationSet is not null || ValidationFraction > 0, nameof(EarlyStoppingPatience), EarlyStoppingPatience,
            "needs validation data: set ValidationSet or ValidationFraction");
        Check(InputChannels is 1 or 3, nameof(InputChannels), InputChannels, "must be 1 (grayscale) or 3 (RGB)");
        Check(DropRate is null || (DropRate >= 0 && DropRate < 1), nameof(DropRate), DropRate, "must be in [0, 1) or null");
        Check(Freeze != FreezeMode.UpToStage || FreezeUpToStage >= 0, nameof(FreezeUpToStage), FreezeUpToStage, "must be >= 0");
        if (WeightsPath is not null && !File.Exists(WeightsPath))
            throw new FileNotFoundException($"CnnTrainerOptions.WeightsPath: weights file '{WeightsPath}' does not exist.", WeightsPath);
    }
}
