using Cnn.Backbones.Models;
using Cnn.MLNet.Data;

namespace Cnn.MLNet.Training.Bottlenecks;

/// <summary>Validation on cached bottlenecks: the head's mean cross-entropy and accuracy, in order.</summary>
internal sealed class FeatureValidation : IValidation
{
    private readonly BottleneckObjective _head;
    private readonly IReadOnlyList<ImageSample> _samples;
    private readonly BottleneckStore _store;
    private readonly int _batchSize;

    /// <param name="head">The objective whose head is scored.</param>
    /// <param name="samples">The validation images (for their labels).</param>
    /// <param name="store">Their bottlenecks.</param>
    /// <param name="batchSize">Images per batch.</param>
    public FeatureValidation(BottleneckObjective head, IReadOnlyList<ImageSample> samples, BottleneckStore store, int batchSize)
    {
        _head = head;
        _samples = samples;
        _store = store;
        _batchSize = batchSize;
    }

    /// <inheritdoc/>
    public ValidationScore? Validate(Backbone model, CancellationToken token)
    {
        var order = Enumerable.Range(0, _samples.Count).ToArray();
        int batches = (_samples.Count + _batchSize - 1) / _batchSize;
        var (loss, accuracy) = ClassificationObjective.Evaluate(model, FeatureBatchSource.Enumerate(_samples, _store, order, batches, _batchSize, token), b =>
        {
            var (features, labels) = _head.OnDevice(b);
            return (_head.Head(model, features), labels);
        });
        return double.IsNaN(loss) ? null : new ValidationScore(loss, accuracy);
    }
}
