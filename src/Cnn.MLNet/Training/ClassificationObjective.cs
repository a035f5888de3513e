using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using Cnn.MLNet.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Training;

/// <summary>
/// Supervised classification (timm's <c>ClassificationTask</c>): cross-entropy of the logits against the (smoothed, mixed)
/// labels, plus each auxiliary head's weighted cross-entropy; validation loss (plain cross-entropy) and accuracy;
/// <see cref="EpochMetrics"/> per epoch. Training accuracy counts the argmax against each image's own label, mixed or not.
/// </summary>
internal sealed class ClassificationObjective : ITrainingObjective<ImageBatch>
{
    private readonly CnnTrainerOptions _options;
    private readonly Device _device;
    private long _correct;

    /// <param name="options">The run's options (label smoothing, the epoch callback).</param>
    /// <param name="device">Where the network trains.</param>
    public ClassificationObjective(CnnTrainerOptions options, Device device)
    {
        _options = options;
        _device = device;
    }

    /// <summary>
    /// Fine-tuning on images: the training batcher's batches of <paramref name="train"/>, this objective, and the validation on
    /// <paramref name="validation"/> (possibly none), all through <paramref name="network"/>'s preprocessing.
    /// </summary>
    /// <param name="options">The run's options.</param>
    /// <param name="network">The network trained.</param>
    /// <param name="train">The training images.</param>
    /// <param name="validation">The validation images (possibly none).</param>
    /// <param name="keepDecoded">
    /// For a run over whole epochs: decode the images now and keep them for every epoch while they fit in memory
    /// (<see cref="ImageBatcher.KeepDecoded"/>), logging how many on <paramref name="channel"/>; null (a learning-rate sweep of a
    /// few batches) decodes each batch's images when it is made.
    /// </param>
    /// <param name="channel">Where the decoding is logged, or null.</param>
    public static TrainingSetup<ImageBatch> Setup(CnnTrainerOptions options, CnnNetwork network, IReadOnlyList<ImageSample> train, IReadOnlyList<ImageSample> validation,
        CancellationToken? keepDecoded = null, Microsoft.ML.Runtime.IChannel? channel = null)
    {
        var trainBatcher = OptimizationSetup.TrainingBatcher(options, network.Preprocess, train.Count);
        var validationBatcher = validation.Count == 0 ? null : OptimizationSetup.EvaluationBatcher(options, network.Preprocess);
        if (keepDecoded is { } token)
            OptimizationSetup.KeepDecoded([(trainBatcher, train, "training"), (validationBatcher, validation, "validation")], channel, token);
        return new(new ImageBatchSource(trainBatcher, train), new ClassificationObjective(options, network.Device),
            validationBatcher is null ? null : new ImageValidation(validationBatcher, validation, network.Device));
    }

    /// <inheritdoc/>
    public void BeginEpoch() => _correct = 0;

    /// <inheritdoc/>
    public StepResult Step(Backbone model, ImageBatch batch, MixDecision mix)
    {
        var (output, lambda) = ForwardMixed(model, batch, mix, _device);
        var labels = batch.LabelsToTensor().to(_device);
        _correct += output.Logits.argmax(1).eq(labels).sum().item<long>();
        return new StepResult(Loss(output, labels, _options.LabelSmoothing, lambda), output.Logits);
    }

    /// <summary>
    /// The training forward pass (<see cref="Backbone.ForwardTrain"/>) on <paramref name="batch"/>'s images on
    /// <paramref name="device"/>, mixed as <paramref name="mix"/> says; and the λ the targets take.
    /// </summary>
    internal static (TrainingOutput Output, double Lambda) ForwardMixed(Backbone model, ImageBatch batch, MixDecision mix, Device device)
    {
        var (images, lambda) = BatchMixer.Apply(batch.ToTensor().to(device), mix);
        return (model.ForwardTrain(images), lambda);
    }

    /// <summary>
    /// The training loss: the cross-entropy of the main logits plus, for each auxiliary head (GoogLeNet's two, Inception v3's one;
    /// present only in training mode), its weight times its cross-entropy. With label smoothing ε the cross-entropy is PyTorch's
    /// <c>cross_entropy(label_smoothing=ε)</c>; for a mixed batch (λ &lt; 1) it is the soft-target cross-entropy against
    /// <see cref="BatchMixer.Targets"/>, as timm's mixup training.
    /// </summary>
    internal static Tensor Loss(TrainingOutput output, Tensor labels, double smoothing = 0, double lambda = 1)
    {
        Tensor? targets = lambda < 1 ? BatchMixer.Targets(labels, (int)output.Logits.shape[1], lambda, smoothing) : null;
        Tensor CrossEntropy(Tensor logits) => targets is null
            ? nn.functional.cross_entropy(logits, labels, label_smoothing: smoothing)
            : BatchMixer.SoftTargetCrossEntropy(logits, targets);
        var loss = CrossEntropy(output.Logits);
        foreach (var auxiliary in output.Auxiliary)
            loss = loss.Plus(CrossEntropy(auxiliary.Logits).Times(auxiliary.Weight));
        return loss;
    }

    /// <summary>Mean cross-entropy and accuracy of the model on <paramref name="samples"/> in eval mode.</summary>
    internal static (double Loss, double Accuracy) Evaluate(nn.Module<Tensor, Tensor> model, ImageBatcher batcher, IReadOnlyList<ImageSample> samples, Device device, CancellationToken token) =>
        Evaluate(model, batcher.EnumerateEpoch(samples, 0, token), b => (model.call(b.ToTensor().to(device)), b.LabelsToTensor().to(device)));

    /// <summary>
    /// Mean cross-entropy and accuracy over <paramref name="batches"/> in eval mode without gradient, <paramref name="score"/> giving
    /// each batch's logits and labels; (NaN, 0) when no batch has an example.
    /// </summary>
    internal static (double Loss, double Accuracy) Evaluate<TBatch>(nn.Module model, IEnumerable<TBatch> batches, Func<TBatch, (Tensor Logits, Tensor Labels)> score)
        where TBatch : ITrainingBatch
    {
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var _ = no_grad();
            double lossSum = 0;
            long seen = 0, correct = 0;
            foreach (var batch in batches)
            {
                if (batch.Count == 0) continue;
                using var scope = NewDisposeScope();
                var (logits, y) = score(batch);
                lossSum += nn.functional.cross_entropy(logits, y, reduction: nn.Reduction.Sum).item<float>();
                correct += logits.argmax(1).eq(y).sum().item<long>();
                seen += batch.Count;
            }
            return seen == 0 ? (double.NaN, 0) : (lossSum / seen, (double)correct / seen);
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    /// <inheritdoc/>
    public string CompleteEpoch(EpochSummary summary) => Report(_options, _correct, summary);

    /// <summary>The epoch's <see cref="EpochMetrics"/> (given to the options' callback) and its log line.</summary>
    internal static string Report(CnnTrainerOptions options, long correct, EpochSummary s)
    {
        var metrics = new EpochMetrics(s.Epoch, s.TrainLoss, (double)correct / s.Images, s.Validation?.Loss, s.Validation?.Accuracy,
            s.LearningRate, s.ImagesPerSecond, s.Elapsed, s.SkippedImages);
        options.EpochCompleted?.Invoke(metrics);
        return metrics.ToString();
    }
}
