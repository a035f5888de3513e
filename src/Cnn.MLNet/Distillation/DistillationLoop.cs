using System.Diagnostics;
using Cnn.Backbones.Models;
using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using Cnn.MLNet.Mapping;
using Cnn.MLNet.Scoring;
using Cnn.MLNet.Training;
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Distillation;

/// <summary>
/// Trains a student network against a teacher: each sample is preprocessed twice, once per model (same crop and flip when
/// augmenting), both batchers prefetching in parallel; the teacher runs in eval mode under no-grad, or once up front with its
/// logits cached per sample when augmentation is off. AdamW/SGD with warm-up and cosine decay, NaN detection, cancellation
/// within one batch, per-epoch metrics.
/// </summary>
internal sealed class DistillationLoop
{
    private readonly CnnDistillationOptions _options;
    private readonly IChannel? _channel;
    private readonly FitCancellation _cancellation;

    /// <param name="options">The run's options.</param>
    /// <param name="channel">Where progress is logged, or null.</param>
    /// <param name="cancellation">Stops the run before the next batch (the options' token or the MLContext's cancellation).</param>
    public DistillationLoop(CnnDistillationOptions options, IChannel? channel, FitCancellation cancellation)
    {
        _options = options;
        _channel = channel;
        _cancellation = cancellation;
    }

    /// <summary>Creates the student network (the teacher's class count and, unless set, channels), initialised from the options'
    /// seed, without training it.</summary>
    public CnnNetwork CreateStudent(DistillationTeacher teacher)
    {
        var o = _options;
        var device = CnnNetwork.ResolveDevice(o.Device);
        var info = ModelRegistry.Get(o.StudentArchitecture);
        int channels = o.InputChannels ?? teacher.InputChannels;
        if (o.Mean is { } mean && mean.Count != channels)
            throw new ArgumentOutOfRangeException(nameof(o.Mean), mean.Count, $"CnnDistillationOptions.Mean must have one value per student input channel ({channels}).");
        if (o.Std is { } std && std.Count != channels)
            throw new ArgumentOutOfRangeException(nameof(o.Std), std.Count, $"CnnDistillationOptions.Std must have one value per student input channel ({channels}).");
        var preprocess = CnnNetwork.PreprocessFor(info.DefaultConfig, channels, o.ImageSize, o.Mean, o.Std, o.CropPct);
        var modelOptions = new ModelOptions { NumClasses = teacher.NumClasses, InChannels = channels, DropRate = o.DropRate, WeightsPath = o.StudentWeightsPath };
        return CnnNetwork.CreateSeeded(o.Seed, info.Name, modelOptions, preprocess, device);
    }

    /// <summary>Trains a new student on <paramref name="samples"/> and returns it in eval mode.</summary>
    /// <param name="teacher">The teacher.</param>
    /// <param name="samples">The images.</param>
    /// <param name="labels">Class index per sample in the teacher's order, −1 when unlabelled.</param>
    public CnnNetwork Train(DistillationTeacher teacher, IReadOnlyList<ImageSample> samples, IReadOnlyList<int> labels)
    {
        var student = CreateStudent(teacher);
        var teacherModel = teacher.Network.Model;
        bool teacherWasTraining = teacherModel.training;
        try
        {
            teacherModel.eval();
            Run(student, teacher.Network, samples, labels);
            student.Model.eval();
            return student;
        }
        catch
        {
            student.Dispose();
            throw;
        }
        finally
        {
            teacherModel.train(teacherWasTraining);
        }
    }

    private void Run(CnnNetwork student, CnnNetwork teacher, IReadOnlyList<ImageSample> samples, IReadOnlyList<int> labels)
    {
        var o = _options;
        var token = _cancellation.Token;
        var model = student.Model;
        var device = student.Device;
        int classes = student.ModelOptions.NumClasses;
        using var optimizer = OptimizationSetup.CreateOptimizer(o, model.parameters());

        // Same shuffle, same per-sample augmentation seed and same crop parameters for both models: the teacher sees the
        // student's crop and flip of each image, through its own size, channels and normalisation.
        var batcherOptions = OptimizationSetup.TrainingBatches(o, samples.Count);
        var studentBatcher = new ImageBatcher(new ImagePreprocessor(student.Preprocess with { MinScale = o.AugmentMinScale }), batcherOptions);
        bool cache = !o.Augment && o.CacheTeacherOutputs;
        var teacherBatcher = cache ? null : new ImageBatcher(new ImagePreprocessor(teacher.Preprocess with { MinScale = o.AugmentMinScale }), batcherOptions);
        float[]? cached = cache ? TeacherLogits(teacher, samples, classes, token) : null;

        int stepsPerEpoch = studentBatcher.GetBatchCount(samples.Count);
        var schedule = OptimizationSetup.Schedule(o, stepsPerEpoch);
        long step = 0;
        for (int epoch = 1; epoch <= o.Epochs; epoch++)
        {
            var clock = Stopwatch.StartNew();
            model.train();
            double lossSum = 0, hardSum = 0, softSum = 0;
            long seen = 0, hardSeen = 0, labelledSeen = 0, studentCorrect = 0, teacherCorrect = 0, agree = 0;
            int batchIndex = 0;
            double rate = schedule.RateAt(step);
            var teacherEpoch = teacherBatcher?.EnumerateEpoch(samples, epoch - 1, token);
            foreach (var (batch, teacherBatch) in Paired(studentBatcher.EnumerateEpoch(samples, epoch - 1, token), teacherEpoch))
            {
                _cancellation.ThrowIfCancellationRequested();
                batchIndex++;
                if (batch.Count == 0) continue;
                var indices = batch.SampleIndices.ToArray();
                if (teacherBatch is not null && !teacherBatch.SampleIndices.SequenceEqual(indices))
                    throw new InvalidOperationException($"Batch {batchIndex} of epoch {epoch}: the teacher's and the student's batches hold different images (an image decoded for one model but not the other).");
                rate = schedule.RateAt(step++);
                OptimizationSetup.SetLearningRate(optimizer, rate);
                using var scope = NewDisposeScope();
                var teacherLogits = cached is not null ? Gather(cached, indices, classes).to(device) : Forward(teacher, teacherBatch!).to(device);
                var teacherPredicted = teacherLogits.argmax(1).cpu().data<long>().ToArray();
                var trueLabels = indices.Select(i => (long)labels[i]).ToArray();
                var y = torch.tensor(trueLabels, ScalarType.Int64).to(device);

                var output = model.ForwardTrain(batch.ToTensor().to(device));
                var terms = DistillationLoss.Compute(output.Logits, teacherLogits, y, o.Temperature, o.Alpha, o.PseudoLabels);
                var loss = terms.Total;
                foreach (var auxiliary in output.Auxiliary)
                    loss = loss + auxiliary.Weight * DistillationLoss.Compute(auxiliary.Logits, teacherLogits, y, o.Temperature, o.Alpha, o.PseudoLabels).Total;
                double value = loss.item<float>();
                if (!double.IsFinite(value))
                    throw new TrainingDivergedException(epoch, batchIndex, value, rate);
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();

                lossSum += value * batch.Count;
                softSum += terms.Soft.item<float>() * batch.Count;
                if (terms.Hard is { } hard)
                {
                    hardSum += hard.item<float>() * terms.Labelled;
                    hardSeen += terms.Labelled;
                }
                seen += batch.Count;
                var studentPredicted = output.Logits.argmax(1).cpu().data<long>().ToArray();
                for (int k = 0; k < indices.Length; k++)
                {
                    if (studentPredicted[k] == teacherPredicted[k]) agree++;
                    if (trueLabels[k] < 0) continue;
                    labelledSeen++;
                    if (studentPredicted[k] == trueLabels[k]) studentCorrect++;
                    if (teacherPredicted[k] == trueLabels[k]) teacherCorrect++;
                }
            }
            if (seen == 0)
                throw new InvalidOperationException("No training image could be used in this epoch (all were skipped as corrupt?).");
            double seconds = clock.Elapsed.TotalSeconds;
            var metrics = new DistillationEpochMetrics(epoch, lossSum / seen, hardSeen > 0 ? hardSum / hardSeen : null, softSum / seen,
                labelledSeen > 0 ? (double)studentCorrect / labelledSeen : null, labelledSeen > 0 ? (double)teacherCorrect / labelledSeen : null,
                (double)agree / seen, labelledSeen, seen - labelledSeen, rate, seen / Math.Max(seconds, 1e-9), clock.Elapsed);
            _channel?.Info(MessageSensitivity.None, metrics.ToString());
            o.EpochCompleted?.Invoke(metrics);
            if (studentBatcher.SkippedCount > 0)
                _channel?.Warning(MessageSensitivity.None, $"{studentBatcher.SkippedCount} corrupt images skipped so far.");
        }
    }

    /// <summary>One eval-mode, no-grad teacher pass over every sample: logits [N · classes], row i for sample i (NaN for skipped images).</summary>
    private float[] TeacherLogits(CnnNetwork teacher, IReadOnlyList<ImageSample> samples, int classes, CancellationToken token)
    {
        var clock = Stopwatch.StartNew();
        var logits = new float[(long)samples.Count * classes];
        Array.Fill(logits, float.NaN);
        var batcher = new ImageBatcher(new ImagePreprocessor(teacher.Preprocess),
            new ImageBatcherOptions { BatchSize = _options.BatchSize, SkipCorruptImages = _options.SkipCorruptImages });
        foreach (var batch in batcher.EnumerateEpoch(samples, 0, token))
        {
            if (batch.Count == 0) continue;
            using var scope = NewDisposeScope();
            var values = Forward(teacher, batch).contiguous().data<float>().ToArray();
            var indices = batch.SampleIndices;
            for (int k = 0; k < batch.Count; k++)
                values.AsSpan(k * classes, classes).CopyTo(logits.AsSpan(indices[k] * classes, classes));
        }
        _channel?.Info(MessageSensitivity.None, $"Teacher logits of {samples.Count} images computed once and cached ({clock.Elapsed.TotalSeconds:0.0}s).");
        return logits;
    }

    /// <summary>Teacher logits of a prepared batch, on the CPU, in eval mode without gradient.</summary>
    private static Tensor Forward(CnnNetwork teacher, ImageBatch batch)
    {
        using var _ = no_grad();
        return teacher.Model.call(batch.ToTensor().to(teacher.Device)).to(CPU);
    }

    private static Tensor Gather(float[] cached, int[] indices, int classes)
    {
        var rows = new float[indices.Length * classes];
        for (int k = 0; k < indices.Length; k++)
            cached.AsSpan(indices[k] * classes, classes).CopyTo(rows.AsSpan(k * classes, classes));
        return torch.tensor(rows, new long[] { indices.Length, classes });
    }

    /// <summary>The student's batches, each with the teacher's batch of the same images (null when the teacher's logits are cached).</summary>
    private static IEnumerable<(ImageBatch Student, ImageBatch? Teacher)> Paired(IEnumerable<ImageBatch> student, IEnumerable<ImageBatch>? teacher)
    {
        using var studentBatches = student.GetEnumerator();
        using var teacherBatches = teacher?.GetEnumerator();
        while (studentBatches.MoveNext())
        {
            ImageBatch? other = null;
            if (teacherBatches is not null)
            {
                if (!teacherBatches.MoveNext())
                    throw new InvalidOperationException("The teacher's epoch ended before the student's.");
                other = teacherBatches.Current;
            }
            yield return (studentBatches.Current, other);
        }
    }
}
