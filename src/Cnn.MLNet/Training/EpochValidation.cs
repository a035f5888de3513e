using Cnn.Backbones.Models;

namespace Cnn.MLNet.Training;

/// <summary>
/// The validation of each epoch with a weight average in play: it scores the averaged weights when they are the run's result,
/// otherwise the trained weights (and the average, reported only), and offers the scored weights to the best-epoch tracker.
/// </summary>
internal sealed class EpochValidation
{
    private readonly IValidation? _validation;
    private readonly ModelEma? _ema;
    private readonly bool _useAverage;

    /// <param name="validation">The validation, or null without validation data.</param>
    /// <param name="ema">The weight average, or null.</param>
    /// <param name="useAverage">Whether the average is the run's result (<see cref="CnnFitOptions.UseModelEmaWeights"/>).</param>
    public EpochValidation(IValidation? validation, ModelEma? ema, bool useAverage)
    {
        _validation = validation;
        _ema = ema;
        _useAverage = useAverage;
    }

    /// <summary>The epoch's score (null without validation data), and the average's when it is kept but not used.</summary>
    public (ValidationScore? Score, ValidationScore? Averaged) Score(Backbone model, CancellationToken token)
    {
        if (_validation is null) return default;
        if (_ema is null) return (_validation.Validate(model, token), null);
        ValidationScore? averaged;
        using (_ema.SwapInto(model)) averaged = _validation.Validate(model, token);
        return _useAverage ? (averaged, null) : (_validation.Validate(model, token), averaged);
    }

    /// <summary>Offers the epoch to <paramref name="best"/> with the weights that were scored; true when it improved.</summary>
    public bool Offer(BestEpochTracker best, int epoch, ValidationScore score, Backbone model)
    {
        if (_ema is null || !_useAverage) return best.Offer(epoch, score, model);
        using (_ema.SwapInto(model)) return best.Offer(epoch, score, model);
    }
}
