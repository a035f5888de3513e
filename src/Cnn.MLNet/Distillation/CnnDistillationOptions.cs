using Cnn.MLNet.Training;

namespace Cnn.MLNet.Distillation;

/// <summary>
/// Options of knowledge distillation (<see cref="CnnTrainer.Distill(DistillationTeacher, string, CnnDistillationOptions?, Microsoft.ML.MLContext?)"/>):
/// a student network is trained to match a teacher's softened class probabilities and, where labels exist, the labels.
/// </summary>
/// <remarks>
/// <para>Per batch of N rows, L of which carry a label (L ≤ N), with student logits s, teacher logits t and temperature T:</para>
/// <code>
/// loss = Alpha · CE(s[labelled], y[labelled])                         (mean over the L labelled rows; the term is 0 when L = 0)
///      + (1 − Alpha) · T² · Σ_rows KL(softmax(t/T) ‖ softmax(s/T)) / N   (KLDivLoss "batchmean" over all N rows)
/// </code>
/// <para>Rows whose label is missing (key 0, or no label column at all) therefore learn from the teacher's soft targets only.
/// With <see cref="PseudoLabels"/> they get the teacher's argmax as a hard label instead, so L = N: every row then counts in both terms.</para>
/// </remarks>
public sealed class CnnDistillationOptions
{
    /// <summary>Registered architecture of the student (e.g. <c>lenet5</c>, <c>resnet18</c>). Set by the <see cref="CnnTrainer"/> factories.</summary>
    public string StudentArchitecture { get; set; } = "resnet18";

    /// <summary>Initial weights of the student (<c>.pth</c> or <c>.safetensors</c>), or null to start from scratch.
    /// A classifier of another class count is left freshly initialised; 3-channel first-conv weights are adapted.</summary>
    public string? StudentWeightsPath { get; set; }

    /// <summary>Classes of the student; null (default) takes the teacher's. Any other value than the teacher's count is an error.</summary>
    public int? NumClasses { get; set; }

    /// <summary>Softmax temperature T applied to both teacher and student logits in the soft term. Default 4.</summary>
    public double Temperature { get; set; } = 4.0;

    /// <summary>Weight of the hard-label cross-entropy, in [0, 1]; the soft term gets 1 − Alpha (times T²). Default 0.5.</summary>
    public double Alpha { get; set; } = 0.5;

    /// <summary>Give unlabelled rows the teacher's argmax as a hard label (they then count in the cross-entropy too). Default false:
    /// unlabelled rows use the soft targets only.</summary>
    public bool PseudoLabels { get; set; }

    /// <summary>Label column (optional in the data): a key type with the teacher's classes in the teacher's order, key 0 = unlabelled.
    /// <see cref="DistillationTeacher.MapLabelsToKeys"/> builds it. Default <c>Label</c>.</summary>
    public string LabelColumnName { get; set; } = "Label";

    /// <summary>Image column: an image (<c>LoadImages</c>), encoded bytes (<c>LoadRawImageBytes</c>) or a text column of paths. Default <c>Image</c>.</summary>
    public string ImageColumnName { get; set; } = "Image";

    /// <summary>Output column of the student's class probabilities. Default <c>Score</c>.</summary>
    public string ScoreColumnName { get; set; } = "Score";

    /// <summary>Output key column of the student's predicted class. Default <c>PredictedLabel</c>.</summary>
    public string PredictedLabelColumnName { get; set; } = "PredictedLabel";

    /// <summary>Training epochs of the student. Default 5.</summary>
    public int Epochs { get; set; } = 5;

    /// <summary>Images per optimizer step (and per teacher forward pass). Default 32.</summary>
    public int BatchSize { get; set; } = 32;

    /// <summary>Peak learning rate of the student. Default 1e-3 (AdamW).</summary>
    public double LearningRate { get; set; } = 1e-3;

    /// <summary>Optimizer. Default AdamW.</summary>
    public CnnOptimizer Optimizer { get; set; } = CnnOptimizer.AdamW;

    /// <summary>SGD momentum. Default 0.9.</summary>
    public double Momentum { get; set; } = 0.9;

    /// <summary>Weight decay. Default 1e-4.</summary>
    public double WeightDecay { get; set; } = 1e-4;

    /// <summary>Learning-rate shape after warm-up. Default cosine.</summary>
    public LearningRateScheduleKind Schedule { get; set; } = LearningRateScheduleKind.Cosine;

    /// <summary>Epochs of linear warm-up (fractions allowed). Default 0.</summary>
    public double WarmupEpochs { get; set; }

    /// <summary>Where the student trains (the teacher stays where it is; its logits are moved). Default <see cref="CnnDevice.Auto"/>.</summary>
    public CnnDevice Device { get; set; } = CnnDevice.Auto;

    /// <summary>Seed for the student's initialisation, shuffling and augmentation. Default 0.</summary>
    public int Seed { get; set; }

    /// <summary>Student input size in pixels; null uses the student architecture's pretrained configuration.</summary>
    public int? ImageSize { get; set; }

    /// <summary>Student input channels (1 or 3); null takes the teacher's.</summary>
    public int? InputChannels { get; set; }

    /// <summary>Student normalisation mean per channel; null uses the student's pretrained configuration.</summary>
    public IReadOnlyList<float>? Mean { get; set; }

    /// <summary>Student normalisation standard deviation per channel; null uses the student's pretrained configuration.</summary>
    public IReadOnlyList<float>? Std { get; set; }

    /// <summary>Student evaluation centre-crop fraction; null uses the student's pretrained configuration.</summary>
    public double? CropPct { get; set; }

    /// <summary>Training augmentation (random resized crop + horizontal flip). The teacher sees the same crop and flip of each image,
    /// through its own preprocessing. Default on.</summary>
    public bool Augment { get; set; } = true;

    /// <summary>Lower bound of the random resized crop's area fraction. Default 0.08.</summary>
    public double AugmentMinScale { get; set; } = 0.08;

    /// <summary>Dropout before the student's classifier, in [0, 1). Default 0.</summary>
    public double DropRate { get; set; }

    /// <summary>Without augmentation: run the teacher once over the data and reuse its logits every epoch. Default true.</summary>
    public bool CacheTeacherOutputs { get; set; } = true;

    /// <summary>Skip images that cannot be decoded (and report how many) instead of failing. Default false.</summary>
    public bool SkipCorruptImages { get; set; }

    /// <summary>Called after every epoch with its metrics.</summary>
    public Action<DistillationEpochMetrics>? EpochCompleted { get; set; }

    /// <summary>Cancels distillation; checked before every batch.</summary>
    public CancellationToken CancellationToken { get; set; }

    /// <summary>Checks every value; throws <see cref="ArgumentOutOfRangeException"/> naming the option and the allowed range.</summary>
    /// <exception cref="FileNotFoundException">The student weights file does not exist.</exception>
    public void Validate()
    {
        static void Check(bool ok, string name, object? value, string rule)
        {
            if (!ok) throw new ArgumentOutOfRangeException(name, value, $"CnnDistillationOptions.{name} {rule}; got {value}.");
        }
        Check(!string.IsNullOrWhiteSpace(StudentArchitecture), nameof(StudentArchitecture), StudentArchitecture, "must name a registered architecture");
        Check(NumClasses is null || NumClasses >= 2, nameof(NumClasses), NumClasses, "must be >= 2 or null (the teacher's class count)");
        Check(Temperature > 0 && double.IsFinite(Temperature), nameof(Temperature), Temperature, "must be a positive number");
        Check(Alpha >= 0 && Alpha <= 1, nameof(Alpha), Alpha, "must be in [0, 1]");
        Check(Epochs >= 1, nameof(Epochs), Epochs, "must be >= 1");
        Check(BatchSize >= 1, nameof(BatchSize), BatchSize, "must be >= 1");
        Check(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), LearningRate, "must be a positive number");
        Check(Momentum >= 0 && Momentum < 1, nameof(Momentum), Momentum, "must be in [0, 1)");
        Check(WeightDecay >= 0 && double.IsFinite(WeightDecay), nameof(WeightDecay), WeightDecay, "must be >= 0");
        Check(WarmupEpochs >= 0 && WarmupEpochs <= Epochs, nameof(WarmupEpochs), WarmupEpochs, $"must be in [0, Epochs={Epochs}]");
        Check(ImageSize is null || ImageSize >= 8, nameof(ImageSize), ImageSize, "must be >= 8 pixels or null");
        Check(InputChannels is null or 1 or 3, nameof(InputChannels), InputChannels, "must be 1 (grayscale), 3 (RGB) or null (the teacher's)");
        Check(Mean is null || InputChannels is null || Mean.Count == InputChannels, nameof(Mean), Mean?.Count, $"must have one value per input channel ({InputChannels})");
        Check(Std is null || (Std.All(s => s > 0) && (InputChannels is null || Std.Count == InputChannels)), nameof(Std), Std?.Count, "must have one positive value per input channel");
        Check(CropPct is null || (CropPct > 0 && CropPct <= 1), nameof(CropPct), CropPct, "must be in (0, 1]");
        Check(AugmentMinScale > 0 && AugmentMinScale <= 1, nameof(AugmentMinScale), AugmentMinScale, "must be in (0, 1]");
        Check(DropRate >= 0 && DropRate < 1, nameof(DropRate), DropRate, "must be in [0, 1)");
        if (StudentWeightsPath is not null && !File.Exists(StudentWeightsPath))
            throw new FileNotFoundException($"CnnDistillationOptions.StudentWeightsPath: weights file '{StudentWeightsPath}' does not exist.", StudentWeightsPath);
    }
}
