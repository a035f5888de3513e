using Cnn.Backbones.Models;
using Cnn.MLNet.Networks;
using Cnn.MLNet.Training;

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
    /// <summary>
    /// The architecture the SDK's options start from when none is named (<c>resnet18</c>): the one place this default is written;
    /// the trainer's, the distillation student's and the feature extractor's options use it.
    /// </summary>
    public const string DefaultArchitecture = ResNetFamily.Names.ResNet18;

    /// <summary>Registered architecture name (e.g. <c>resnet50</c>). Set by the <see cref="CnnTrainer"/> factories. Default <see cref="DefaultArchitecture"/>.</summary>
    public string Architecture { get; set; } = DefaultArchitecture;

    /// <summary>
    /// How the network is built: <see cref="ModelOptions.WeightsPath"/> (torchvision/timm <c>.pth</c> or <c>.safetensors</c> to start
    /// from; the classifier is replaced when the class count differs, 3-channel first-conv weights are adapted to
    /// <see cref="ModelOptions.InChannels"/>), <see cref="ModelOptions.InChannels"/> (3 = RGB, 1 = grayscale images such as
    /// Fashion-MNIST), <see cref="ModelOptions.ImageSize"/> (square input size; null = the pretrained configuration's),
    /// <see cref="ModelOptions.DropRate"/>, <see cref="ModelOptions.DropPathRate"/>, <see cref="ModelOptions.GlobalPool"/>, the
    /// auxiliary heads and <see cref="ModelOptions.TransformInput"/> of GoogLeNet / Inception v3, …
    /// <see cref="ModelOptions.NumClasses"/> is ignored: the network gets the label column's class count. The fitted model
    /// stores these options as they are.
    /// </summary>
    public ModelOptions Model { get; set; } = new();

    /// <summary>Label column: a key type, as <c>MapValueToKey</c> produces. Default <c>Label</c>.</summary>
    public string LabelColumnName { get; set; } = "Label";

    /// <summary>Which parameters stay fixed. Frozen BatchNorm layers stay in eval mode so their running statistics do not move.</summary>
    public FreezeMode Freeze { get; set; } = FreezeMode.None;

    /// <summary>
    /// With <see cref="FreezeMode.Backbone"/> and no augmentation: run the frozen backbone once per image and train the head on
    /// its cached outputs ("bottlenecks", as ML.NET's ImageClassificationTrainer), which gives the same model in a fraction of the
    /// time. Default true; the log says when and why the cache cannot be used.
    /// </summary>
    public bool CacheBottlenecks { get; set; } = true;

    /// <summary>
    /// A folder where bottlenecks are kept between runs (<c>cnn train --cache-dir</c>), or null to keep them in memory only. An entry
    /// is reused only for the same architecture, preprocessing, frozen weights and image content (SHA-256 of each image).
    /// </summary>
    [CommandLineOption("--cache-dir", HelpText = "with --freeze backbone and --augment off: keep the backbone's outputs per image in this folder and reuse them in later runs", ValueName = "<folder>")]
    public string? CacheDirectory { get; set; }

    /// <summary>With <see cref="FreezeMode.UpToStage"/>: the last frozen stage (0 = stem only, 1 = stem and first stage, …).</summary>
    public int FreezeUpToStage { get; set; }

    /// <summary>Called after every epoch with its metrics.</summary>
    public Action<EpochMetrics>? EpochCompleted { get; set; }

    /// <summary>The network these options train (before the class count is known: <see cref="NetworkSpec.WithClasses"/>).</summary>
    /// <exception cref="ArgumentException">Unknown architecture or invalid model or preprocessing options.</exception>
    /// <exception cref="FileNotFoundException">The weights file does not exist.</exception>
    public NetworkSpec ToNetworkSpec() => NetworkSpec.For(Architecture, Model ?? throw new ArgumentNullException(nameof(Model)), Mean, Std, CropPct);

    /// <summary>Checks every value; throws <see cref="ArgumentOutOfRangeException"/> naming the option and the allowed range.</summary>
    /// <exception cref="FileNotFoundException">The weights file does not exist.</exception>
    public void Validate()
    {
        Check(!string.IsNullOrWhiteSpace(Architecture), nameof(Architecture), Architecture, "must name a registered architecture");
        Check(Model is not null, nameof(Model), Model, "must be set (new ModelOptions())");
        ValidateShared(Model);
        Check(Freeze != FreezeMode.UpToStage || FreezeUpToStage >= 0, nameof(FreezeUpToStage), FreezeUpToStage, "must be >= 0");
        Check(CacheDirectory is null || (CacheDirectory.Length > 0 && !File.Exists(CacheDirectory)), nameof(CacheDirectory), CacheDirectory,
            "must be a folder (created if missing), not a file");
        ToNetworkSpec();
    }
}
