using Cnn.MLNet.Data;
using Cnn.MLNet.Training;

namespace Cnn.MLNet.Distillation;

/// <summary>
/// Distillation's training batches: the student's batch with the teacher's side of the same images. Both batchers share the
/// shuffle, the per-sample augmentation seed and the crop parameters, so the teacher sees the student's crop and flip of each
/// image through its own size, channels and normalisation, both prefetching in parallel. When augmentation and mixing are off
/// and caching is on, the teacher's logits are computed once, on the first epoch, and each batch carries their rows instead.
/// </summary>
internal sealed class DistillationBatches : IBatchSource<DistillationBatch>
{
    private readonly DistillationData _train;
    private readonly ImageBatcher _studentBatcher;
    private readonly ImageBatcher? _teacherBatcher;
    private readonly TeacherOutputs _teacher;
    private float[]? _cachedLogits;

    /// <param name="options">The run's options.</param>
    /// <param name="student">The student's preprocessing.</param>
    /// <param name="teacher">The teacher's outputs.</param>
    /// <param name="train">Training images with their labels.</param>
    public DistillationBatches(CnnDistillationOptions options, Imaging.PreprocessOptions student, TeacherOutputs teacher, DistillationData train)
    {
        _train = train;
        _teacher = teacher;
        _studentBatcher = OptimizationSetup.TrainingBatcher(options, student, train.Count);
        bool cache = !options.Augment && !new BatchMixer(options).Enabled && options.CacheTeacherOutputs;
        _teacherBatcher = cache ? null : OptimizationSetup.TrainingBatcher(options, teacher.Preprocess, train.Count);
    }

    /// <summary>What keeping images decoded covers: the student's training images, then the teacher's view of them (which shares
    /// the student's pixels where both decode alike; absent when the teacher's logits are cached).</summary>
    public IEnumerable<(ImageBatcher? Batcher, IReadOnlyList<ImageSample> Samples, string What)> DecodedSets =>
        [(_studentBatcher, _train.Samples, "training"), (_teacherBatcher, _train.Samples, "teacher's training")];

    /// <inheritdoc/>
    public int BatchesPerEpoch => _studentBatcher.GetBatchCount(_train.Count);

    /// <inheritdoc/>
    public long SkippedCount => _studentBatcher.SkippedCount;

    /// <inheritdoc/>
    public IEnumerable<DistillationBatch> Epoch(int epoch, CancellationToken token)
    {
        if (_teacherBatcher is null)
            _cachedLogits ??= _teacher.Logits(_train.Samples, "training", token);
        return Paired(epoch, token);
    }

    private IEnumerable<DistillationBatch> Paired(int epoch, CancellationToken token)
    {
        using var studentBatches = _studentBatcher.EnumerateEpoch(_train.Samples, epoch, token).GetEnumerator();
        using var teacherBatches = _teacherBatcher?.EnumerateEpoch(_train.Samples, epoch, token).GetEnumerator();
        int index = 0;
        while (studentBatches.MoveNext())
        {
            index++;
            var batch = studentBatches.Current;
            if (teacherBatches is null)
            {
                using var logits = batch.Count == 0 ? null : _teacher.Gather(_cachedLogits!, batch.SampleIndices.ToArray());
                yield return new DistillationBatch(batch, null, logits);
                continue;
            }
            if (!teacherBatches.MoveNext())
                throw new InvalidOperationException("The teacher's epoch ended before the student's.");
            var teacherBatch = teacherBatches.Current;
            if (batch.Count > 0 && !teacherBatch.SampleIndices.SequenceEqual(batch.SampleIndices))
                throw new InvalidOperationException($"Batch {index} of epoch {epoch + 1}: the teacher's and the student's batches hold different images (an image decoded for one model but not the other).");
            yield return new DistillationBatch(batch, teacherBatch, null);
        }
    }
}
