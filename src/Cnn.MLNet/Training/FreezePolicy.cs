using Cnn.Backbones.Models;

namespace Cnn.MLNet.Training;

/// <summary>Applies a <see cref="FreezeMode"/> to a backbone before training.</summary>
internal static class FreezePolicy
{
    /// <summary>
    /// Freezes the whole backbone but its classifier (<see cref="FreezeMode.Backbone"/>), or the stem and the stages up to
    /// <paramref name="upToStage"/> (<see cref="FreezeMode.UpToStage"/>); frozen BatchNorm layers stay in eval mode.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The stage does not exist in this model; the message lists its stages.</exception>
    public static void Apply(Backbone model, FreezeMode mode, int upToStage)
    {
        switch (mode)
        {
            case FreezeMode.Backbone:
                FreezeBackbone(model);
                break;
            case FreezeMode.UpToStage:
                CheckStage(model, upToStage);
                model.FreezeUpTo(upToStage);
                break;
        }
    }

    /// <summary>Freezes every stage group but the one holding the classifier.</summary>
    public static void FreezeBackbone(Backbone model)
    {
        string head = model.PretrainedConfig.Classifier;
        model.Freeze(model.StageGroups.Where(g => !g.Contains(head)).Select(g => g.Name).ToArray());
    }

    /// <summary>Throws when <paramref name="stage"/> is not a freezable stage of <paramref name="model"/> (the head is not).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The stage does not exist; the message lists the model's stages.</exception>
    public static void CheckStage(Backbone model, int stage)
    {
        string head = model.PretrainedConfig.Classifier;
        var stages = model.StageGroups.Where(g => !g.Contains(head)).Select(g => g.Name).ToArray();
        if (stage < 0 || stage >= stages.Length)
            throw new ArgumentOutOfRangeException(nameof(CnnTrainerOptions.FreezeUpToStage), stage,
                $"FreezeUpToStage {stage} does not exist in this model: its stages are {string.Join(", ", stages.Select((n, i) => $"{i} = {n}"))}. " +
                $"Use 0..{stages.Length - 1}, or FreezeMode.Backbone to train only the classifier.");
    }
}
