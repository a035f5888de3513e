using Cnn.Backbones.Models;

namespace Cnn.MLNet.Training.Bottlenecks;

/// <summary>What is cached of each image when only the head trains.</summary>
internal enum BottleneckLevel
{
    /// <summary>The pooled vector the classifier takes (<c>ForwardHead(x, preLogits: true)</c> in eval mode): the head is the classifier alone.</summary>
    PreLogits,

    /// <summary>The unpooled last feature map (<c>ForwardFeatures</c>): the trainable head has more than the classifier (a norm, an MLP).</summary>
    Features,
}

/// <summary>
/// Whether a fine-tuning run can train its head on cached backbone outputs ("bottlenecks", as ML.NET's
/// ImageClassificationTrainer does) and give the same model as running the frozen backbone every epoch: the backbone is frozen
/// (<see cref="FreezeMode.Backbone"/>, no freeze-epoch phases), every training image is seen the same way each epoch (no
/// augmentation, no mixup/CutMix) and the frozen part has nothing random in training mode (no stochastic depth, no auxiliary heads).
/// </summary>
internal static class BottleneckPlan
{
    /// <summary>The level to cache at, or null with the reason the cache cannot be used (null reason: not asked for, not frozen).</summary>
    public static BottleneckLevel? For(CnnTrainerOptions options, Backbone model, out string? reason)
    {
        reason = null;
        if (!options.CacheBottlenecks || options.Freeze != FreezeMode.Backbone) return null;
        reason = options switch
        {
            { Augment: true } => "training augmentation is on (set Augment = false, or --augment off, to cache)",
            { FreezeEpochs: > 0 } => "FreezeEpochs unfreezes the backbone after the head-only epochs",
            _ when new BatchMixer(options).Enabled => "mixup/CutMix changes the images every batch",
            _ when model.HasAuxiliaryHeads => "the auxiliary heads train on intermediate maps (set Model.AuxLogits = false to cache)",
            _ when model.modules().OfType<StochasticDepth>().Any(s => s.Probability > 0) =>
                "the backbone has stochastic depth in training mode (set Model.DropPathRate = 0 to cache)",
            _ => null,
        };
        if (reason is not null) return null;
        string classifier = model.PretrainedConfig.Classifier + ".";
        bool classifierOnly = model.named_parameters().Where(p => p.parameter.requires_grad).All(p => p.name.StartsWith(classifier, StringComparison.Ordinal));
        return model.HeadSplitsAtPreLogits && classifierOnly ? BottleneckLevel.PreLogits : BottleneckLevel.Features;
    }
}
