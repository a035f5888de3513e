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
/// Classification on cached bottlenecks: the head alone run on them (<see cref="Backbone.ForwardClassifier"/> for pre-logits,
/// <see cref="Backbone.ForwardHead"/> for feature maps), with the loss and report of <see cref="ClassificationObjective"/>. The
/// cache is used only when batches are never mixed, so the mix decision is always the identity.
/// </summary>
internal sealed class BottleneckObjective : ITrainingObjective<FeatureBatch>
{
    private readonly CnnTrainerOptions _options;
    private readonly Device _device;
    private readonly BottleneckLevel _level;
    private long _correct;

    /// <param name="options">The run's options.</param>
    /// <param name="device">Where the head trains.</param>
    /// <param name="level">What the stores hold.</param>
    public BottleneckObjective(CnnTrainerOptions options, Device device, BottleneckLevel level)
    {
        _options = options;
        _device = device;
        _level = level;
    }

    /// <summary>
    /// Training a head on cached bottlenecks: the same batches as <see cref="ClassificationObjective"/> would draw (the training
    /// batcher's seeded order and batch boundaries) read from <paramref name="trainStore"/>, this objective, and the validation on
    /// <paramref name="validationStore"/> (null without validation images).
    /// </summary>
    /// <param name="options">The run's options.</param>
    /// <param name="network">The network whose head trains.</param>
    /// <param name="level">What the stores hold.</param>
    /// <param name="train">Training images (for their labels and the batch order).</param>
    /// <param name="trainStore">Their bottlenecks.</param>
    /// <param name="validation">Validation images, possibly none.</param>
    /// <param name="validationStore">Their bottlenecks, or null without validation images.</param>
    public static TrainingSetup<FeatureBatch> Setup(CnnTrainerOptions options, CnnNetwork network, BottleneckLevel level, IReadOnlyList<ImageSample> train,
        BottleneckStore trainStore, IReadOnlyList<ImageSample> validation, BottleneckStore? validationStore)
    {
        var objective = new BottleneckObjective(options, network.Device, level);
        var order = OptimizationSetup.TrainingBatcher(options, network.Preprocess, train.Count);
        return new(new FeatureBatchSource(order, train, trainStore, options.BatchSize), objective,
            validation.Count == 0 || validationStore is null ? null : new FeatureValidation(objective, validation, validationStore, options.BatchSize));
    }

    /// <inheritdoc/>
    public void BeginEpoch() => _correct = 0;

    /// <inheritdoc/>
    public StepResult Step(Backbone model, FeatureBatch batch, MixDecision mix)
    {
        var output = new TrainingOutput(Head(model, batch.Features.to(_device)), []);
        var labels = batch.Labels.to(_device);
        _correct += output.Logits.argmax(1).eq(labels).sum().item<long>();
        return new StepResult(ClassificationObjective.Loss(output, labels, _options.LabelSmoothing), output.Logits);
    }

    /// <summary>The head's logits on a batch of bottlenecks <paramref name="features"/> already on the device.</summary>
    internal Tensor Head(Backbone model, Tensor features) => _level == BottleneckLevel.PreLogits ? model.ForwardClassifier(features) : model.ForwardHead(features);

    /// <summary><paramref name="batch"/>'s bottlenecks and labels on the device.</summary>
    internal (Tensor Features, Tensor Labels) OnDevice(FeatureBatch batch) => (batch.Features.to(_device), batch.Labels.to(_device));

    /// <inheritdoc/>
    public string CompleteEpoch(EpochSummary summary) => ClassificationObjective.Report(_options, _correct, summary);
}
