using Cnn.Backbones.Models;
using static TorchSharp.torch;

namespace Cnn.MLNet.Explain;

/// <summary>
/// Grad-CAM (Selvaraju et al., 2017), computed as pytorch-grad-cam does: with <c>A</c> the activation of the chosen stage and
/// <c>g = ∂ logit_class / ∂A</c>, the channel weights are <c>w_c = mean_{h,w} g_c</c> and the map is
/// <c>ReLU(Σ_c w_c · A_c)</c>, then upsampled bilinearly to the input size and min–max normalised (see <see cref="GradCamMap"/>).
/// </summary>
/// <remarks>
/// The model runs in eval mode (BatchNorm uses its running statistics) and is put back in the mode it was in. The logits are
/// computed from the same stage tensors (<see cref="Backbone.ForwardStagesAndFeatures"/> then <see cref="Backbone.ForwardHead"/>),
/// so the gradient reaches the stage; gradients are taken with <c>torch.autograd.grad</c>, so no parameter's <c>.grad</c> changes.
/// </remarks>
public static class GradCam
{
    /// <summary>The Grad-CAM map of <paramref name="targetClass"/> at <paramref name="stage"/> for one preprocessed image.</summary>
    /// <param name="model">A classifier (not features-only, at least one class) whose <see cref="Backbone.OutIndices"/> include the stage and end with the last stage (the default).</param>
    /// <param name="input">The preprocessed image, [1, C, H, W], on the model's device.</param>
    /// <param name="targetClass">Class to explain; null for the most probable one.</param>
    /// <param name="stage">Feature stage (index into <see cref="Backbone.FeatureInfo"/>); null for the last one.</param>
    /// <exception cref="ArgumentException">The model has no classifier, the input is not one image, or the stage is not a spatial map.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The stage or the class is out of range; the message names the valid ones.</exception>
    public static GradCamMap Compute(Backbone model, Tensor input, int? targetClass = null, int? stage = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        StageSelection.CheckOneImage(input, "Grad-CAM");
        if (model.FeaturesOnly || model.NumClasses == 0)
            throw new ArgumentException($"{model.GetName()} has no classifier (features-only or 0 classes); Grad-CAM needs class logits.", nameof(model));
        int index = StageSelection.Resolve(model, stage);
        if (model.OutIndices[^1] != model.FeatureInfo.Count - 1)
            throw new ArgumentException(
                $"{model.GetName()} was built with OutIndices [{string.Join(", ", model.OutIndices)}], which do not end with the last stage " +
                $"({model.FeatureInfo.Count - 1}); the logits would not be computed from the stage maps.", nameof(model));
        if (targetClass is { } k && (k < 0 || k >= model.NumClasses))
            throw new ArgumentOutOfRangeException(nameof(targetClass), k, $"Class {k} is out of range: the model has {model.NumClasses} classes (0..{model.NumClasses - 1}).");
        using var scope = NewDisposeScope();
        using var grad = enable_grad();
        // Float32 and contiguous: the stage maps must be the very tensors the logits were computed from.
        using var float32 = model.OverrideCompute(Cnn.Backbones.Compute.ComputeSettings.Float32);
        return StageSelection.InEvalMode(model, () => Run(model, input, targetClass, index));
    }

    private static GradCamMap Run(Backbone model, Tensor input, int? targetClass, int index)
    {
        // A leaf that requires grad keeps the graph even when every parameter is frozen.
        var x = input.detach().requires_grad_(true);
        var (stages, features) = model.ForwardStagesAndFeatures(x);
        var logits = model.ForwardHead(features);
        int cls = targetClass ?? (int)logits[0].argmax().item<long>();
        var activation = stages[StageSelection.OutputPosition(model, index)];
        StageSelection.CheckSpatial(model, index, activation, "Grad-CAM");
        var gradient = autograd.grad([logits[0, cls]], [activation])[0];
        var weights = gradient.mean([2, 3], keepdim: true);
        var raw = nn.functional.relu((weights * activation).sum(1, keepdim: true)).detach();
        int height = (int)input.shape[2], width = (int)input.shape[3];
        var upsampled = nn.functional.interpolate(raw, [height, width], mode: InterpolationMode.Bilinear, align_corners: false);
        var probabilities = logits.detach().softmax(1);
        return new GradCamMap(
            cls, index, model.FeatureInfo[index].ModuleName,
            ToArray(raw), (int)raw.shape[2], (int)raw.shape[3],
            MinMax(ToArray(upsampled)), height, width,
            ToArray(probabilities));
    }

    /// <summary><c>(v − min) / (max − min)</c> in place; all zeros when the values are constant.</summary>
    internal static float[] MinMax(float[] values)
    {
        float min = values.Min(), max = values.Max(), range = max - min;
        for (int i = 0; i < values.Length; i++) values[i] = range > 0 ? (values[i] - min) / range : 0f;
        return values;
    }

    private static float[] ToArray(Tensor t) => t.to(CPU).contiguous().data<float>().ToArray();
}
