using Cnn.Backbones.Models;

namespace Cnn.MLNet.Training;

/// <summary>
/// A stretch of epochs with one optimizer and one schedule: fastai's <c>fine_tune</c> is a head-only phase
/// (<see cref="CnnFitOptions.FreezeEpochs"/>) followed by the full phase with discriminative rates; without freeze epochs a run
/// is one phase.
/// </summary>
/// <param name="Epochs">Epochs of the phase.</param>
/// <param name="HeadOnly">Freeze everything but the classifier for the phase.</param>
/// <param name="Spread">How the phase's learning rates spread over the stage groups.</param>
internal sealed record TrainingPhase(int Epochs, bool HeadOnly, RateSpread Spread)
{
    /// <summary>fastai's <c>lr_mult</c> of <c>fine_tune</c>: the stem trains at 1/100 of the head's rate after the frozen phase.</summary>
    public const double FineTuneRatio = 100;

    /// <summary>The phases of a run with <paramref name="options"/>.</summary>
    public static IReadOnlyList<TrainingPhase> For(CnnFitOptions options)
    {
        var spread = new RateSpread(options.DiscriminativeLearningRateRatio, options.LayerDecay);
        if (options.FreezeEpochs == 0) return [new TrainingPhase(options.Epochs, false, spread)];
        if (spread == RateSpread.None) spread = new RateSpread(FineTuneRatio, null);
        return [new TrainingPhase(options.FreezeEpochs, true, RateSpread.None), new TrainingPhase(options.Epochs, false, spread)];
    }

    /// <summary>
    /// Freezes <paramref name="model"/> as the phase wants and returns a scope that puts the earlier freezing back (a head-only phase
    /// freezes every stage but the classifier's; a full phase leaves the model as it is).
    /// </summary>
    public IDisposable Apply(Backbone model)
    {
        if (!HeadOnly) return new Unchanged();
        var before = model.FrozenStages.ToArray();
        FreezePolicy.FreezeBackbone(model);
        return new Refreeze(model, before);
    }

    private sealed class Unchanged : IDisposable
    {
        public void Dispose() { }
    }

    private sealed class Refreeze(Backbone model, string[] frozen) : IDisposable
    {
        public void Dispose()
        {
            model.Unfreeze();
            if (frozen.Length > 0) model.Freeze(frozen);
        }
    }
}
