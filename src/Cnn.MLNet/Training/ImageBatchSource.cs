using Cnn.MLNet.Data;

namespace Cnn.MLNet.Training;

/// <summary>Training batches of images: a training batcher's prefetched, shuffled (and augmented) epochs of the samples.</summary>
internal sealed class ImageBatchSource : IBatchSource<ImageBatch>
{
    private readonly ImageBatcher _batcher;
    private readonly IReadOnlyList<ImageSample> _samples;

    /// <param name="batcher">The training batcher (<see cref="OptimizationSetup.TrainingBatcher"/>).</param>
    /// <param name="samples">The training images.</param>
    public ImageBatchSource(ImageBatcher batcher, IReadOnlyList<ImageSample> samples)
    {
        _batcher = batcher;
        _samples = samples;
    }

    /// <inheritdoc/>
    public int BatchesPerEpoch => _batcher.GetBatchCount(_samples.Count);

    /// <inheritdoc/>
    public long SkippedCount => _batcher.SkippedCount;

    /// <inheritdoc/>
    public IEnumerable<ImageBatch> Epoch(int epoch, CancellationToken token) => _batcher.EnumerateEpoch(_samples, epoch, token);
}
