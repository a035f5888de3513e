using Cnn.Backbones.Models;

namespace Cnn.MLNet.Explain;

/// <summary>Resolves and checks the feature stage an explanation or feature-map picture is about.</summary>
internal static class StageSelection
{
    /// <summary>
    /// The index into <see cref="Backbone.FeatureInfo"/> of <paramref name="stage"/> (null: the last stage), which must also be
    /// one of the stages <see cref="Backbone.ForwardStages"/> returns (<see cref="Backbone.OutIndices"/>).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The stage is not a stage of the model; the message lists the valid ones.</exception>
    public static int Resolve(Backbone model, int? stage)
    {
        var info = model.FeatureInfo;
        int index = stage ?? info.Count - 1;
        if (index < 0 || index >= info.Count)
            throw new ArgumentOutOfRangeException(nameof(stage), stage,
                $"Stage {stage} is not a stage of {model.GetName()}; its stages are {Describe(model)}.");
        if (!model.OutIndices.Contains(index))
            throw new ArgumentOutOfRangeException(nameof(stage), stage,
                $"Stage {index} ({info[index].ModuleName}) is not among the stages {model.GetName()} was built to output " +
                $"(OutIndices [{string.Join(", ", model.OutIndices)}]).");
        return index;
    }

    /// <summary>The position of stage <paramref name="index"/> in the list <see cref="Backbone.ForwardStages"/> returns.</summary>
    public static int OutputPosition(Backbone model, int index) => model.OutIndices.ToList().IndexOf(index);

    /// <summary>The stages as <c>0 = act1 (64 channels, /2), 1 = layer1 …</c>.</summary>
    public static string Describe(Backbone model) =>
        string.Join(", ", model.FeatureInfo.Select((f, i) => $"{i} = {f.ModuleName} ({f.NumChannels} channels, /{f.Reduction})"));

    /// <summary>Throws unless <paramref name="input"/> is one image [1, C, H, W].</summary>
    public static void CheckOneImage(TorchSharp.torch.Tensor input, string purpose)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.dim() != 4 || input.shape[0] != 1)
            throw new ArgumentException($"{purpose} takes one image [1, C, H, W]; got [{string.Join(", ", input.shape)}].", nameof(input));
    }

    /// <summary>Runs <paramref name="work"/> with the model in eval mode, then puts it back in the mode it was in.</summary>
    public static T InEvalMode<T>(Backbone model, Func<T> work)
    {
        bool wasTraining = model.training;
        model.eval();
        try
        {
            return work();
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    /// <summary>Throws unless <paramref name="map"/> is a spatial map [1, C, h, w].</summary>
    public static void CheckSpatial(Backbone model, int index, TorchSharp.torch.Tensor map, string purpose)
    {
        if (map.dim() != 4 || map.shape[0] != 1)
            throw new ArgumentException(
                $"Stage {index} ({model.FeatureInfo[index].ModuleName}) of {model.GetName()} is [{string.Join(", ", map.shape)}], " +
                $"not a spatial map [1, C, h, w]; {purpose} needs one.");
    }
}
