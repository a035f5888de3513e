using Cnn.Backbones.Models;
using Cnn.MLNet.Networks;
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
/// <para>With <see cref="CnnFitOptions.Augment"/> the teacher sees the same crop and flip of each image as the student, through its own
/// preprocessing; the shared options (epochs, optimiser, schedule, preprocessing) apply to the student.</para>
/// </remarks>
public sealed class CnnDistillationOptions : CnnFitOptions
{
    /// <summary>Registered architecture of the student (e.g. <c>lenet5</c>, <c>resnet18</c>). Set by the <see cref="CnnTrainer"/> factories.</summary>
    public string StudentArchitecture { get; set; } = CnnTrainerOptions.DefaultArchitecture;

    /// <summary>
    /// How the student is built (<see cref="ModelOptions.WeightsPath"/> to start from, <see cref="ModelOptions.InChannels"/>,
    /// <see cref="ModelOptions.ImageSize"/>, <see cref="ModelOptions.DropRate"/>, …); its class count is always the teacher's.
    /// Null (default): the teacher's input channels, the student architecture's pretrained input size, no dropout, random weights.
    /// </summary>
    public ModelOptions? Student { get; set; }

    /// <summary>Classes of the student; null (default) takes the teacher's. Any other value than the teacher's count is an error.</summary>
    public int? NumClasses { get; set; }

    /// <summary>Softmax temperature T applied to both teacher and student logits in the soft term. Default 4.</summary>
    [CommandLineOption("--temperature", HelpText = "softmax temperature T of the soft term", ValueName = "T", Min = 1e-3, Max = 1000)]
    public double Temperature { get; set; } = 4.0;

    /// <summary>Weight of the hard-label cross-entropy, in [0, 1]; the soft term gets 1 − Alpha (times T²). Default 0.5.</summary>
    [CommandLineOption("--alpha", HelpText = "weight of the hard-label cross-entropy, in [0, 1]", Min = 0, Max = 1)]
    public double Alpha { get; set; } = 0.5;

    /// <summary>Give unlabelled rows the teacher's argmax as a hard label (they then count in the cross-entropy too). Default false:
    /// unlabelled rows use the soft targets only.</summary>
    [CommandLineOption("--pseudo-labels", HelpText = "unlabelled images take the teacher's argmax as a hard label")]
    public bool PseudoLabels { get; set; }

    /// <summary>Label column (optional in the data): a key type with the teacher's classes in the teacher's order, key 0 = unlabelled.
    /// <see cref="DistillationTeacher.MapLabelsToKeys"/> builds it. Default <c>Label</c>.</summary>
    public string LabelColumnName { get; set; } = "Label";

    /// <summary>Without augmentation: run the teacher once over the data and reuse its logits every epoch. Default true.</summary>
    public bool CacheTeacherOutputs { get; set; } = true;

    /// <summary>Called after every epoch with its metrics.</summary>
    public Action<DistillationEpochMetrics>? EpochCompleted { get; set; }

    /// <summary>The student's model options for <paramref name="teacher"/>: <see cref="Student"/> (or its defaults) with the teacher's classes.</summary>
    public ModelOptions StudentModel(DistillationTeacher teacher) =>
        (Student ?? new ModelOptions { InChannels = teacher.InputChannels, DropRate = 0 }) with { NumClasses = teacher.NumClasses };

    /// <summary>The student network for <paramref name="teacher"/>.</summary>
    /// <exception cref="ArgumentException">Unknown architecture or invalid model or preprocessing options.</exception>
    public NetworkSpec StudentSpec(DistillationTeacher teacher) => NetworkSpec.For(StudentArchitecture, StudentModel(teacher), Mean, Std, CropPct);

    /// <summary>Checks every value; throws <see cref="ArgumentOutOfRangeException"/> naming the option and the allowed range.</summary>
    /// <exception cref="FileNotFoundException">The student weights file does not exist.</exception>
    public void Validate()
    {
        ValidateShared(Student);
        Check(!string.IsNullOrWhiteSpace(StudentArchitecture), nameof(StudentArchitecture), StudentArchitecture, "must name a registered architecture");
        Check(NumClasses is null || NumClasses >= 2, nameof(NumClasses), NumClasses, "must be >= 2 or null (the teacher's class count)");
        Check(Temperature > 0 && double.IsFinite(Temperature), nameof(Temperature), Temperature, "must be a positive number");
        Check(Alpha >= 0 && Alpha <= 1, nameof(Alpha), Alpha, "must be in [0, 1]");
        if (Student is not null)
            NetworkSpec.For(StudentArchitecture, Student, Mean, Std, CropPct);
    }
}
