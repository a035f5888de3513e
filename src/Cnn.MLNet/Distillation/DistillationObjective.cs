using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.MLNet.Data;
using Cnn.MLNet.Networks;
using Cnn.MLNet.Training;
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Distillation;

/// <summary>
/// Knowledge distillation (timm's <c>LogitDistillationTask</c>): the loss of <see cref="DistillationLoss"/> between the student's
/// logits and the teacher's on the same images, each preprocessed once per model (<see cref="DistillationBatches"/>). The teacher
/// runs in eval mode under no-grad on its view of the batch, mixed as the student's is, or its logits come cached with the batch;
/// its logits on the validation images are computed once (<see cref="DistillationValidation"/>). Reports
/// <see cref="DistillationEpochMetrics"/> per epoch.
/// </summary>
internal sealed class DistillationObjective : ITrainingObjective<DistillationBatch>
{
    private readonly CnnDistillationOptions _options;
    private readonly TeacherOutputs _teacher;
    private readonly Device _device;
    private readonly IReadOnlyList<int> _labels;
    private DistillationCounts _counts = new();

    /// <param name="options">The run's options.</param>
    /// <param name="device">Where the student trains.</param>
    /// <param name="teacher">The teacher's outputs.</param>
    /// <param name="labels">The training images' labels (−1 = unlabelled), by sample index.</param>
    public DistillationObjective(CnnDistillationOptions options, Device device, TeacherOutputs teacher, IReadOnlyList<int> labels)
    {
        _options = options;
        _teacher = teacher;
        _device = device;
        _labels = labels;
    }

    /// <summary>Distillation of <paramref name="teacher"/> into <paramref name="student"/>: the paired batches, this objective and the validation.</summary>
    /// <param name="options">The run's options.</param>
    /// <param name="student">The student being trained.</param>
    /// <param name="teacher">The teacher (kept in eval mode by the caller).</param>
    /// <param name="train">Training images with their labels (−1 = unlabelled).</param>
    /// <param name="validation">Validation images with their labels, possibly none.</param>
    /// <param name="channel">Where the teacher's cached passes and the images kept decoded are logged, or null.</param>
    /// <param name="keepDecoded">
    /// When given, decodes the training and validation images now and keeps them for every epoch within one memory budget, the
    /// teacher reading the student's pixels where both decode alike (<see cref="OptimizationSetup.KeepDecoded"/>); the token
    /// cancels the decoding.
    /// </param>
    public static TrainingSetup<DistillationBatch> Setup(CnnDistillationOptions options, CnnNetwork student, CnnNetwork teacher, DistillationData train,
        DistillationData validation, IChannel? channel, CancellationToken? keepDecoded = null)
    {
        var outputs = new TeacherOutputs(teacher, options, student.Spec.Model.NumClasses, channel);
        var batches = new DistillationBatches(options, student.Preprocess, outputs, train);
        var validating = validation.Count == 0 ? null : new DistillationValidation(options, student, outputs, validation);
        if (keepDecoded is { } token)
            OptimizationSetup.KeepDecoded(validating is null ? batches.DecodedSets : [.. batches.DecodedSets, validating.DecodedSet], channel, token);
        return new(batches, new DistillationObjective(options, student.Device, outputs, train.Labels), validating);
    }

    /// <inheritdoc/>
    public void BeginEpoch() => _counts = new DistillationCounts();

    /// <inheritdoc/>
    public StepResult Step(Backbone model, DistillationBatch batch, MixDecision mix)
    {
        var (output, lambda) = ClassificationObjective.ForwardMixed(model, batch.Student, mix, _device);
        // The teacher's view of the same images, mixed alike (a CutMix box is placed relative to each view's size).
        var teacherLogits = (batch.CachedTeacherLogits ?? _teacher.Forward(BatchMixer.Apply(batch.TeacherView!.ToTensor().to(_teacher.Device), mix).Images)).to(_device);
        var labels = batch.Student.SampleIndices.ToArray().Select(i => (long)_labels[i]).ToArray();
        var y = torch.tensor(labels, ScalarType.Int64).to(_device);
        var o = _options;
        var mixing = new DistillationLoss.Mixing(o.LabelSmoothing, lambda);
        var terms = DistillationLoss.Compute(output.Logits, teacherLogits, y, o.Temperature, o.Alpha, o.PseudoLabels, mixing);
        var loss = terms.Total;
        foreach (var auxiliary in output.Auxiliary)
            loss = loss.Plus(DistillationLoss.Compute(auxiliary.Logits, teacherLogits, y, o.Temperature, o.Alpha, o.PseudoLabels, mixing).Total.Times(auxiliary.Weight));

        _counts.Soft += terms.Soft.item<float>() * batch.Count;
        if (terms.Hard is { } hard)
        {
            _counts.Hard += hard.item<float>() * terms.Labelled;
            _counts.HardImages += terms.Labelled;
        }
        _counts.Add(output.Logits.argmax(1), teacherLogits.argmax(1), labels);
        return new StepResult(loss, output.Logits);
    }

    /// <inheritdoc/>
    public string CompleteEpoch(EpochSummary s)
    {
        var c = _counts;
        var metrics = new DistillationEpochMetrics(s.Epoch, s.TrainLoss, c.HardImages > 0 ? c.Hard / c.HardImages : null, c.Soft / s.Images,
            c.StudentAccuracy, c.TeacherAccuracy, (double)c.Agreed / c.Images, c.Labelled, c.Images - c.Labelled, s.LearningRate,
            s.ImagesPerSecond, s.Elapsed, s.Validation?.Loss, s.Validation?.Accuracy, s.Validation?.Agreement, s.SkippedImages);
        _options.EpochCompleted?.Invoke(metrics);
        return metrics.ToString();
    }
}

/// <summary>Images for distillation with a label each in the teacher's class order (−1 = unlabelled).</summary>
/// <param name="Samples">The images.</param>
/// <param name="Labels">Class index per image, −1 when unlabelled.</param>
internal sealed record DistillationData(IReadOnlyList<ImageSample> Samples, IReadOnlyList<int> Labels)
{
    /// <summary>Number of images.</summary>
    public int Count => Samples.Count;

    /// <summary>Number of labelled images.</summary>
    public int LabelledCount => Labels.Count(l => l >= 0);

    /// <summary>No images.</summary>
    public static DistillationData Empty { get; } = new(Array.Empty<ImageSample>(), Array.Empty<int>());

    /// <summary>
    /// Stratified, seeded split (the labelled images of each class and the unlabelled ones each split alike, as
    /// <see cref="ImageDataset.Split"/> splits classes).
    /// </summary>
    public (DistillationData Train, DistillationData Validation) Split(double validationFraction, int seed)
    {
        var isValidation = StratifiedSplit.ValidationMask(Labels, validationFraction, seed);
        DistillationData Part(bool validation)
        {
            var indices = Enumerable.Range(0, Count).Where(i => isValidation[i] == validation).ToArray();
            return new DistillationData(indices.Select(i => Samples[i]).ToArray(), indices.Select(i => Labels[i]).ToArray());
        }
        return (Part(false), Part(true));
    }
}
