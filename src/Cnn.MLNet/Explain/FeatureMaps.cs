using Cnn.Backbones.Models;
using static TorchSharp.torch;

namespace Cnn.MLNet.Explain;

/// <summary>Captures the activation of one feature stage (the input of a <see cref="FeatureMapGrid"/> picture).</summary>
public static class FeatureMaps
{
    /// <summary>
    /// The eval-mode output of <paramref name="stage"/> (<see cref="Backbone.ForwardStages"/>) for one preprocessed image; the
    /// model is put back in the mode it was in.
    /// </summary>
    /// <param name="model">The backbone; its <see cref="Backbone.OutIndices"/> must include the stage (all stages by default).</param>
    /// <param name="input">The preprocessed image, [1, C, H, W], on the model's device.</param>
    /// <param name="stage">Feature stage (index into <see cref="Backbone.FeatureInfo"/>); null for the last one.</param>
    /// <exception cref="ArgumentOutOfRangeException">The stage is out of range; the message lists the stages.</exception>
    /// <exception cref="ArgumentException">The input is not one image, or the stage's output is not a spatial map.</exception>
    public static StageActivation Capture(Backbone model, Tensor input, int? stage = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        StageSelection.CheckOneImage(input, "A feature-map grid");
        int index = StageSelection.Resolve(model, stage);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return StageSelection.InEvalMode(model, () =>
        {
            var map = model.ForwardStages(input)[StageSelection.OutputPosition(model, index)];
            StageSelection.CheckSpatial(model, index, map, "a feature-map grid");
            var values = map.to(CPU).contiguous().data<float>().ToArray();
            return new StageActivation(index, model.FeatureInfo[index].ModuleName, (int)map.shape[1], (int)map.shape[2], (int)map.shape[3], values);
        });
    }
}
