using Cnn.Backbones.Models;
using Cnn.MLNet.Data;
using Cnn.MLNet.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Training.Bottlenecks;

/// <summary>One step's cached bottlenecks and their labels.</summary>
/// <param name="Features">Rows of the store [n, …] (CPU).</param>
/// <param name="Labels">Class index per row [n] (int64, CPU).</param>
internal sealed record FeatureBatch(Tensor Features, Tensor Labels) : ITrainingBatch, IDisposable
{
    /// <inheritdoc/>
    public int Count => (int)Features.shape[0];

    /// <inheritdoc/>
    public void Dispose()
    {
        Features.Dispose();
        Labels.Dispose();
    }
}

/// <summary>
/// Classification on cached bottlenecks: the same batches as <see cref="ClassificationObjective"/> would draw (the training
/// batcher's seeded order and batch boundaries), the head alone run on them (<see cref="Backbone.ForwardClassifier"/> for
/// pre-logits, <see cref="Backbone.ForwardHead"/> for feature maps), the same loss, validation and report.
/// </summary>
internal sealed class BottleneckObjective : ITrainingObjective<FeatureBatch>
{
    private readonly CnnTrainerOptions _options;
    private readonly Device _device;
    private readonly BottleneckLevel _level;
    private readonly ImageBatcher _order;
    private readonly IReadOnlyList<ImageSample> _train;
    private readonly BottleneckStore _trainStore;
    private readonly IReadOnlyList<ImageSample> _validation;
    private readonly BottleneckStore? _validationStore;
    private long _correct;

    /// <param name="options">The run's options.</param>
    /// <param name="network">The network whose head trains.</param>
    /// <param name="level">What the stores hold.</param>
    /// <param name="train">Training images (for their labels and the batch order).</param>
    /// <param name="trainStore">Their bottlenecks.</param>
    /// <param name="validation">Validation images, possibly none.</param>
    /// <param name="validationStore">Their bottlenecks, or null without validation images.</param>
    public BottleneckObjective(CnnTrainerOptions options, CnnNetwork network, BottleneckLevel level, IReadOnlyList<ImageSample> train, BottleneckStore trainStore,
        IReadOnlyList<ImageSample> validation, BottleneckStore? validationStore)
    {
        _options = options;
        _device = network.Device;
        _level = level;
        _order = OptimizationSetup.TrainingBatcher(options, network.Preprocess, train.Count);
        _train = train;
        _trainStore = trainStore;
        _validation = validation;
        _validationStore = validationStore;
    }

    /// <inheritdoc/>
    public int StepsPerEpoch => _order.GetBatchCount(_train.Count);

    /// <inheritdoc/>
    public long SkippedCount => _trainStore.Skipped;

    /// <inheritdoc/>
    public IEnumerable<FeatureBatch> Batches(int epoch, CancellationToken token)
    {
        _correct = 0;
        return Enumerate(_train, _trainStore, _order.GetEpochOrder(_train.Count, epoch), StepsPerEpoch, _options.BatchSize, token);
    }

    private static IEnumerable<FeatureBatch> Enumerate(IReadOnlyList<ImageSample> samples, BottleneckStore store, int[] order, int batches, int batchSize,
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

    /// <inheritdoc/>
    public Tensor Input(FeatureBatch batch, MixDecision mix) => batch.Features.to(_device);

    /// <inheritdoc/>
    public TrainingOutput Forward(Backbone model, Tensor input) => new(Head(model, input), []);

    private Tensor Head(Backbone model, Tensor input) => _level == BottleneckLevel.PreLogits ? model.ForwardClassifier(input) : model.ForwardHead(input);

    /// <inheritdoc/>
    public Tensor Loss(TrainingOutput output, FeatureBatch batch)
    {
        var labels = batch.Labels.to(_device);
        _correct += output.Logits.argmax(1).eq(labels).sum().item<long>();
        return ClassificationObjective.Loss(output, labels, _options.LabelSmoothing);
    }

    /// <inheritdoc/>
    public ValidationScore? Validate(Backbone model, CancellationToken token)
    {
        if (_validation.Count == 0 || _validationStore is null) return null;
        var order = Enumerable.Range(0, _validation.Count).ToArray();
        int batches = (_validation.Count + _options.BatchSize - 1) / _options.BatchSize;
        var (loss, accuracy) = ClassificationObjective.Evaluate(model, Enumerate(_validation, _validationStore, order, batches, _options.BatchSize, token),
            b => (Head(model, b.Features.to(_device)), b.Labels.to(_device)));
        return double.IsNaN(loss) ? null : new ValidationScore(loss, accuracy);
    }

    /// <inheritdoc/>
    public string CompleteEpoch(EpochSummary summary) => ClassificationObjective.Report(_options, _correct, summary);
}
