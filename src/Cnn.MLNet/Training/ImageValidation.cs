using Cnn.Backbones.Models;
using Cnn.MLNet.Data;
using static TorchSharp.torch;

namespace Cnn.MLNet.Training;

/// <summary>Classification validation on images: mean cross-entropy and accuracy in eval mode (<see cref="ClassificationObjective.Evaluate(nn.Module{Tensor, Tensor}, ImageBatcher, IReadOnlyList{ImageSample}, Device, CancellationToken)"/>).</summary>
internal sealed class ImageValidation : IValidation
{
    private readonly ImageBatcher _batcher;
    private readonly IReadOnlyList<ImageSample> _samples;
    private readonly Device _device;

    /// <param name="batcher">The evaluation batcher (<see cref="OptimizationSetup.EvaluationBatcher"/>).</param>
    /// <param name="samples">The validation images (labels are class indices), possibly none.</param>
    /// <param name="device">Where the model runs.</param>
    public ImageValidation(ImageBatcher batcher, IReadOnlyList<ImageSample> samples, Device device)
    {
        _batcher = batcher;
        _samples = samples;
        _device = device;
    }

    /// <inheritdoc/>
    public ValidationScore? Validate(Backbone model, CancellationToken token)
    {
        if (_samples.Count == 0) return null;
        var (loss, accuracy) = ClassificationObjective.Evaluate(model, _batcher, _samples, _device, token);
        return new ValidationScore(loss, accuracy);
    }
}
