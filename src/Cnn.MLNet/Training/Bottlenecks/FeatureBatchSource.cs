using Cnn.MLNet.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Training.Bottlenecks;

/// <summary>Batches of cached bottlenecks in the training batcher's seeded order and batch boundaries (skipped images left out).</summary>
internal sealed class FeatureBatchSource : IBatchSource<FeatureBatch>
{
    private readonly ImageBatcher _order;
    private readonly IReadOnlyList<ImageSample> _samples;
    private readonly BottleneckStore _store;
    private readonly int _batchSize;

    /// <param name="order">The training batcher whose order and batch count the batches follow.</param>
    /// <param name="samples">The training images (for their labels).</param>
    /// <param name="store">Their bottlenecks.</param>
    /// <param name="batchSize">Images per batch.</param>
    public FeatureBatchSource(ImageBatcher order, IReadOnlyList<ImageSample> samples, BottleneckStore store, int batchSize)
    {
        _order = order;
        _samples = samples;
        _store = store;
        _batchSize = batchSize;
    }

    /// <inheritdoc/>
    public int BatchesPerEpoch => _order.GetBatchCount(_samples.Count);

    /// <inheritdoc/>
    public long SkippedCount => _store.Skipped;

    /// <inheritdoc/>
    public IEnumerable<FeatureBatch> Epoch(int epoch, CancellationToken token) =>
        Enumerate(_samples, _store, _order.GetEpochOrder(_samples.Count, epoch), BatchesPerEpoch, _batchSize, token);

    /// <summary>
    /// <paramref name="batches"/> batches of <paramref name="batchSize"/> rows of <paramref name="store"/> in <paramref name="order"/>;
    /// each batch is disposed when the next is drawn.
    /// </summary>
    public static IEnumerable<FeatureBatch> Enumerate(IReadOnlyList<ImageSample> samples, BottleneckStore store, int[] order, int batches, int batchSize,
        CancellationToken token)
    {
        for (int b = 0; b < batches; b++)
        {
            token.ThrowIfCancellationRequested();
            var rows = order.Skip(b * batchSize).Take(batchSize).Where(i => store.Present[i]).ToArray();
            using var index = torch.tensor(rows.Select(i => (long)i).ToArray(), ScalarType.Int64);
            using var batch = new FeatureBatch(store.Features.index_select(0, index), torch.tensor(rows.Select(i => (long)samples[i].Label).ToArray(), ScalarType.Int64));
            yield return batch;
        }
    }
}
