using Cnn.Backbones.Models;
using TorchSharp.Modules;

namespace Cnn.MLNet.Training;

/// <summary>One optimizer parameter group: trainable parameters of one stage that share a learning-rate multiplier and a weight decay.</summary>
/// <param name="Stage">The stage group's name (<see cref="Backbone.StageGroups"/>).</param>
/// <param name="Parameters">Its trainable parameters.</param>
/// <param name="RateScale">Multiplier of the schedule's learning rate.</param>
/// <param name="WeightDecay">Decoupled weight decay of the group.</param>
internal sealed record ParameterGroup(string Stage, IReadOnlyList<Parameter> Parameters, double RateScale, double WeightDecay);

/// <summary>How learning rates are spread over a backbone's stage groups, stem (0) to head (G − 1).</summary>
/// <param name="Ratio">fastai's <c>slice(lr / ratio, lr)</c>: geometric from 1/ratio to 1 (fastai's <c>even_mults</c>), or null.</param>
/// <param name="LayerDecay">timm's layer decay: group i at decay^(G − 1 − i), or null.</param>
internal readonly record struct RateSpread(double? Ratio, double? LayerDecay)
{
    /// <summary>One rate for every group.</summary>
    public static RateSpread None => default;

    /// <summary>The multiplier of group <paramref name="index"/> of <paramref name="count"/>.</summary>
    public double Scale(int index, int count)
    {
        if (count <= 1) return 1;
        if (LayerDecay is { } decay) return Math.Pow(decay, count - 1 - index);
        if (Ratio is { } ratio) return Math.Pow(ratio, (double)index / (count - 1)) / ratio;
        return 1;
    }
}

/// <summary>
/// Splits a backbone's trainable parameters into optimizer groups: one per stage (for discriminative rates) and, as timm's
/// <c>param_groups_weight_decay</c>, biases and every parameter of fewer than two dimensions (normalisation weights) without weight
/// decay unless <see cref="CnnFitOptions.DecayNormAndBias"/>.
/// </summary>
internal static class ParameterGroups
{
    /// <summary>The non-empty groups of <paramref name="model"/>'s parameters that require a gradient.</summary>
    public static IReadOnlyList<ParameterGroup> Build(Backbone model, CnnFitOptions options, RateSpread spread)
    {
        var stages = model.GetStageParameters();
        var groups = new List<ParameterGroup>();
        for (int i = 0; i < stages.Count; i++)
        {
            double scale = spread.Scale(i, stages.Count);
            var trainable = stages[i].Parameters.Where(p => p.Parameter.requires_grad).ToList();
            var decayed = trainable.Where(p => options.DecayNormAndBias || Decays(p.Name, p.Parameter)).Select(p => p.Parameter).ToList();
            var plain = trainable.Select(p => p.Parameter).Except(decayed).ToList();
            if (decayed.Count > 0) groups.Add(new ParameterGroup(stages[i].Stage.Name, decayed, scale, options.WeightDecay));
            if (plain.Count > 0) groups.Add(new ParameterGroup(stages[i].Stage.Name, plain, scale, 0));
        }
        return groups;
    }

    /// <summary>timm's rule: weight decay on parameters of two or more dimensions that are not biases.</summary>
    internal static bool Decays(string name, Parameter parameter) => parameter.dim() >= 2 && !name.EndsWith(".bias", StringComparison.Ordinal);
}
