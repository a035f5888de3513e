using System.Diagnostics;
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
/// logits and the teacher's on the same images, each preprocessed once per model (the same crop and flip when augmenting, both
/// batchers prefetching in parallel). The teacher runs in eval mode under no-grad, or once up front with its logits cached per
/// image when augmentation is off; its logits on the validation images are always computed once. Reports
/// <see cref="DistillationEpochMetrics"/> per epoch.
/// </summary>
internal sealed class DistillationObjective : ITrainingObjective
{
    private readonly CnnDistillationOptions _options;
    private readonly CnnNetwork _teacher;
    private readonly Device _device;
    private readonly int _classes;
    private readonly DistillationData _train;
    private readonly DistillationData _validation;
    private readonly ImageBatcher _studentBatcher;
    private readonly ImageBatcher? _teacherBatcher;
    private readonly ImageBatcher _studentEvalBatcher;
    private readonly IChannel? _channel;
    private float[]? _cachedTrainLogits;
    private float[]? _validationLogits;
    private ImageBatch? _teacherBatch;
    private Tensor? _teacherInput;
    private double _lambda = 1;
    private EpochCounts _counts = new();
    private double? _validationAgreement;

    /// <param name="options">The run's options.</param>
    /// <param name="student">The student being trained.</param>
    /// <param name="teacher">The teacher (kept in eval mode by the caller).</param>
    /// <param name="train">Training images with their labels (−1 = unlabelled).</param>
    /// <param name="validation">Validation images with their labels, possibly none.</param>
    /// <param name="channel">Where the teacher's cached pass is logged, or null.</param>
    public DistillationObjective(CnnDistillationOptions options, CnnNetwork student, CnnNetwork teacher, DistillationData train, DistillationData validation, IChannel? channel)
    {
        _options = options;
        _teacher = teacher;
        _device = student.Device;
        _classes = student.Spec.Model.NumClasses;
        _train = train;
        _validation = validation;
        _channel = channel;
        // Same shuffle, same per-sample augmentation seed and same crop parameters for both models: the teacher sees the
        // student's crop and flip of each image, through its own size, channels and normalisation.
        _studentBatcher = OptimizationSetup.TrainingBatcher(options, student.Preprocess, train.Count);
        bool cache = !options.Augment && !new BatchMixer(options).Enabled && options.CacheTeacherOutputs;
        _teacherBatcher = cache ? null : OptimizationSetup.TrainingBatcher(options, teacher.Preprocess, train.Count);
        _studentEvalBatcher = OptimizationSetup.EvaluationBatcher(options, student.Preprocess);
    }

    /// <inheritdoc/>
    public int StepsPerEpoch => _studentBatcher.GetBatchCount(_train.Count);

    /// <inheritdoc/>
    public long SkippedCount => _studentBatcher.SkippedCount;

    /// <inheritdoc/>
    public IEnumerable<ImageBatch> Batches(int epoch, CancellationToken token)
    {
        if (_teacherBatcher is null)
            _cachedTrainLogits ??= TeacherLogits(_train.Samples, "training", token);
        _counts = new EpochCounts();
        return Paired(epoch, token);
    }

    private IEnumerable<ImageBatch> Paired(int epoch, CancellationToken token)
    {
        using var studentBatches = _studentBatcher.EnumerateEpoch(_train.Samples, epoch, token).GetEnumerator();
        using var teacherBatches = _teacherBatcher?.EnumerateEpoch(_train.Samples, epoch, token).GetEnumerator();
        int index = 0;
        try
        {
            while (studentBatches.MoveNext())
            {
                index++;
                var batch = studentBatches.Current;
                if (teacherBatches is not null)
                {
                    if (!teacherBatches.MoveNext())
                        throw new InvalidOperationException("The teacher's epoch ended before the student's.");
                    _teacherBatch = teacherBatches.Current;
                    if (batch.Count > 0 && !_teacherBatch.SampleIndices.SequenceEqual(batch.SampleIndices))
                        throw new InvalidOperationException($"Batch {index} of epoch {epoch + 1}: the teacher's and the student's batches hold different images (an image decoded for one model but not the other).");
                }
                yield return batch;
            }
        }
        finally
        {
            _teacherBatch = null;
            _teacherInput?.Dispose();
            _teacherInput = null;
        }
    }

    /// <inheritdoc/>
    public Tensor Input(ImageBatch batch, MixDecision mix)
    {
        var (images, lambda) = BatchMixer.Apply(batch.ToTensor().to(_device), mix);
        _lambda = lambda;
        _teacherInput?.Dispose();
        _teacherInput = null;
        // The teacher's view of the same images, mixed alike (a CutMix box is placed relative to each view's size).
        if (_teacherBatch is { } teacherBatch)
            _teacherInput = BatchMixer.Apply(teacherBatch.ToTensor().to(_teacher.Device), mix).Images.DetachFromDisposeScope();
        return images;
    }

    /// <inheritdoc/>
    public TrainingOutput Forward(Backbone model, Tensor input) => model.ForwardTrain(input);

    /// <inheritdoc/>
    public Tensor Loss(TrainingOutput output, ImageBatch batch)
    {
        var indices = batch.SampleIndices.ToArray();
        var teacherLogits = (_cachedTrainLogits is { } cached ? Gather(cached, indices) : TeacherForward(_teacherInput!)).to(_device);
        var labels = indices.Select(i => (long)_train.Labels[i]).ToArray();
        var y = torch.tensor(labels, ScalarType.Int64).to(_device);
        var o = _options;
        var mix = new DistillationLoss.Mixing(o.LabelSmoothing, _lambda);
        var terms = DistillationLoss.Compute(output.Logits, teacherLogits, y, o.Temperature, o.Alpha, o.PseudoLabels, mix);
        var loss = terms.Total;
        foreach (var auxiliary in output.Auxiliary)
            loss = loss.Plus(DistillationLoss.Compute(auxiliary.Logits, teacherLogits, y, o.Temperature, o.Alpha, o.PseudoLabels, mix).Total.Times(auxiliary.Weight));

        _counts.Soft += terms.Soft.item<float>() * batch.Count;
        if (terms.Hard is { } hard)
        {
            _counts.Hard += hard.item<float>() * terms.Labelled;
            _counts.HardImages += terms.Labelled;
        }
        _counts.Add(output.Logits.argmax(1), teacherLogits.argmax(1), labels);
        return loss;
    }

    /// <inheritdoc/>
    public ValidationScore? Validate(Backbone model, CancellationToken token)
    {
        if (_validation.Count == 0) return null;
        _validationLogits ??= TeacherLogits(_validation.Samples, "validation", token);
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var _ = no_grad();
            var o = _options;
            var counts = new EpochCounts();
            double lossSum = 0;
            foreach (var batch in _studentEvalBatcher.EnumerateEpoch(_validation.Samples, 0, token))
            {
                if (batch.Count == 0) continue;
                using var scope = NewDisposeScope();
                var indices = batch.SampleIndices.ToArray();
                var teacherLogits = Gather(_validationLogits, indices).to(_device);
                var labels = indices.Select(i => (long)_validation.Labels[i]).ToArray();
                var logits = model.call(batch.ToTensor().to(_device));
                var terms = DistillationLoss.Compute(logits, teacherLogits, torch.tensor(labels, ScalarType.Int64).to(_device), o.Temperature, o.Alpha, o.PseudoLabels);
                lossSum += terms.Total.item<float>() * batch.Count;
                counts.Add(logits.argmax(1), teacherLogits.argmax(1), labels);
            }
            if (counts.Images == 0) return null;
            _validationAgreement = (double)counts.Agreed / counts.Images;
            return new ValidationScore(lossSum / counts.Images, counts.StudentAccuracy);
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    /// <inheritdoc/>
    public string CompleteEpoch(EpochSummary s)
    {
        var c = _counts;
        var metrics = new DistillationEpochMetrics(s.Epoch, s.TrainLoss, c.HardImages > 0 ? c.Hard / c.HardImages : null, c.Soft / s.Images,
            c.StudentAccuracy, c.TeacherAccuracy, (double)c.Agreed / c.Images, c.Labelled, c.Images - c.Labelled, s.LearningRate,
            s.ImagesPerSecond, s.Elapsed, s.Validation?.Loss, s.Validation?.Accuracy, s.Validation is null ? null : _validationAgreement, s.SkippedImages);
        _options.EpochCompleted?.Invoke(metrics);
        return metrics.ToString();
    }

    /// <summary>One eval-mode, no-grad teacher pass over <paramref name="samples"/>: logits [N · classes], row i for sample i (NaN for skipped images).</summary>
    private float[] TeacherLogits(IReadOnlyList<ImageSample> samples, string what, CancellationToken token)
    {
        var clock = Stopwatch.StartNew();
        var logits = new float[(long)samples.Count * _classes];
        Array.Fill(logits, float.NaN);
        var batcher = OptimizationSetup.EvaluationBatcher(_options, _teacher.Preprocess);
        foreach (var batch in batcher.EnumerateEpoch(samples, 0, token))
        {
            if (batch.Count == 0) continue;
            using var scope = NewDisposeScope();
            var values = TeacherForward(batch.ToTensor()).contiguous().data<float>().ToArray();
            var indices = batch.SampleIndices;
            for (int k = 0; k < batch.Count; k++)
                values.AsSpan(k * _classes, _classes).CopyTo(logits.AsSpan(indices[k] * _classes, _classes));
        }
        _channel?.Info(MessageSensitivity.None, $"Teacher logits of {samples.Count} {what} images computed once and cached ({clock.Elapsed.TotalSeconds:0.0}s).");
        return logits;
    }

    /// <summary>Teacher logits of a prepared input, on the CPU, in eval mode without gradient.</summary>
    private Tensor TeacherForward(Tensor input)
    {
        using var _ = no_grad();
        return _teacher.Model.call(input.to(_teacher.Device)).to(CPU);
    }

    private Tensor Gather(float[] cached, int[] indices)
    {
        var rows = new float[indices.Length * _classes];
        for (int k = 0; k < indices.Length; k++)
            cached.AsSpan(indices[k] * _classes, _classes).CopyTo(rows.AsSpan(k * _classes, _classes));
        return torch.tensor(rows, new long[] { indices.Length, _classes });
    }

    /// <summary>Per-epoch tallies: loss parts, agreement with the teacher, accuracies on the labelled images.</summary>
    private sealed class EpochCounts
    {
        public double Soft, Hard;
        public long HardImages, Images, Labelled, Agreed, StudentCorrect, TeacherCorrect;

        public double? StudentAccuracy => Labelled > 0 ? (double)StudentCorrect / Labelled : null;

        public double? TeacherAccuracy => Labelled > 0 ? (double)TeacherCorrect / Labelled : null;

        public void Add(Tensor studentPredicted, Tensor teacherPredicted, long[] labels)
        {
            var student = studentPredicted.cpu().data<long>().ToArray();
            var teacher = teacherPredicted.cpu().data<long>().ToArray();
            for (int k = 0; k < labels.Length; k++)
            {
                Images++;
                if (student[k] == teacher[k]) Agreed++;
                if (labels[k] < 0) continue;
                Labelled++;
                if (student[k] == labels[k]) StudentCorrect++;
                if (teacher[k] == labels[k]) TeacherCorrect++;
            }
        }
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
