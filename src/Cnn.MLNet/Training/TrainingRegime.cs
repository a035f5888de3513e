namespace Cnn.MLNet.Training;

/// <summary>
/// What kind of run the <see cref="TrainingLoop"/> makes: <see cref="FitRegime"/> (the options' phases and schedules, the whole
/// recipe) or the learning-rate sweep (<see cref="LearningRateSweep"/>: one phase with the sweep as its schedule, the bare
/// optimisation, stopped when the loss diverges), as fastai's <c>lr_find</c> runs through <c>fit</c> with a callback.
/// </summary>
internal abstract class TrainingRegime
{
    /// <summary>The run's phases, each with its own optimizer and schedule.</summary>
    public abstract IReadOnlyList<TrainingPhase> Phases { get; }

    /// <summary>
    /// Whether the run applies the recipe around the bare step: mixing, gradient accumulation, clipping, the weight average,
    /// checkpoints and resume, the per-batch and per-epoch reports.
    /// </summary>
    public abstract bool FullRecipe { get; }

    /// <summary>The learning rate of each 0-based optimizer step of <paramref name="phase"/>, which has <paramref name="updatesPerEpoch"/> updates per epoch.</summary>
    public abstract Func<long, double> Schedule(TrainingPhase phase, int updatesPerEpoch);

    /// <summary>Sees each batch's loss before its backward pass; false ends the run there, without that update.</summary>
    /// <param name="epoch">1-based epoch.</param>
    /// <param name="batch">1-based batch of the epoch.</param>
    /// <param name="rate">The learning rate of the update the batch goes into.</param>
    /// <param name="loss">The batch's loss.</param>
    /// <exception cref="TrainingDivergedException">Fit's loss became NaN or infinite.</exception>
    public abstract bool Accept(int epoch, int batch, double rate, double loss);

    /// <summary>True when the run ends after <paramref name="updates"/> optimizer steps of the phase.</summary>
    public virtual bool Finished(long updates) => false;
}

/// <summary>Fine-tuning and distillation: the options' phases (<see cref="TrainingPhase.For"/>) and schedules; a NaN or infinite loss is an error.</summary>
internal sealed class FitRegime : TrainingRegime
{
    private readonly CnnFitOptions _options;

    /// <param name="options">The run's options.</param>
    public FitRegime(CnnFitOptions options)
    {
        _options = options;
        Phases = TrainingPhase.For(options);
    }

    /// <inheritdoc/>
    public override IReadOnlyList<TrainingPhase> Phases { get; }

    /// <inheritdoc/>
    public override bool FullRecipe => true;

    /// <inheritdoc/>
    public override Func<long, double> Schedule(TrainingPhase phase, int updatesPerEpoch) =>
        OptimizationSetup.Schedule(_options, updatesPerEpoch, phase.Epochs).RateAt;

    /// <inheritdoc/>
    public override bool Accept(int epoch, int batch, double rate, double loss) =>
        double.IsFinite(loss) ? true : throw new TrainingDivergedException(epoch, batch, loss, rate);
}
