using System.Diagnostics;
using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.MLNet.Distributed;
using Cnn.MLNet.Mapping;
using Cnn.MLNet.Networks;
using Cnn.MLNet.Training.Checkpoints;
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Training;

/// <summary>
/// The one training loop of fine-tuning, distillation, the bottleneck cache and the learning-rate sweep: phases (fastai's frozen
/// then unfrozen fine-tuning) of epochs of the batch source's batches, mixed (mixup/CutMix) when asked, each trained on with one
/// call to the objective (<see cref="ITrainingObjective{TBatch}.Step"/>) and one optimizer update per accumulation group
/// (<see cref="PhaseOptimizer"/>); an average of the weights (EMA); checkpoints and resume; cancellation within one batch;
/// NaN/Inf detection; validation (<see cref="EpochValidation"/>), early stopping and best-epoch restore; per-epoch logging
/// through the ML.NET host. The <see cref="TrainingRegime"/> says what kind of run it is: fit, or the learning-rate sweep.
/// </summary>
internal sealed class TrainingLoop
{
    private readonly CnnFitOptions _options;
    private readonly TrainingRegime _regime;
    private readonly IChannel? _channel;
    private readonly FitCancellation _cancellation;
    private readonly RunFingerprint? _fingerprint;
    private readonly BatchMixer _mixer;
    private readonly DataParallelTraining? _parallel = DataParallelTraining.FromEnvironment(); // under mpirun only

    /// <summary>A fit (<see cref="FitRegime"/>) with <paramref name="options"/>.</summary>
    /// <param name="options">The run's options (optimizer, schedule, epochs, early stopping, checkpoints).</param>
    /// <param name="channel">Where progress is logged, or null.</param>
    /// <param name="cancellation">Stops the run before the next batch (the options' token or the MLContext's cancellation).</param>
    /// <param name="fingerprint">What the run is (recorded in checkpoints, compared on resume); needed with checkpoints or resume.</param>
    public TrainingLoop(CnnFitOptions options, IChannel? channel, FitCancellation cancellation, RunFingerprint? fingerprint = null)
        : this(options, new FitRegime(options), channel, cancellation, fingerprint)
    {
    }

    /// <param name="options">The run's options (optimizer, schedule, epochs, early stopping, checkpoints).</param>
    /// <param name="regime">What kind of run it is.</param>
    /// <param name="channel">Where progress is logged, or null.</param>
    /// <param name="cancellation">Stops the run before the next batch (the options' token or the MLContext's cancellation).</param>
    /// <param name="fingerprint">What the run is (recorded in checkpoints, compared on resume); needed with checkpoints or resume.</param>
    public TrainingLoop(CnnFitOptions options, TrainingRegime regime, IChannel? channel, FitCancellation cancellation, RunFingerprint? fingerprint = null)
    {
        if (regime.FullRecipe && (options.CheckpointDirectory is not null || options.ResumeFrom is not null) && fingerprint is null)
            throw new ArgumentNullException(nameof(fingerprint), "Checkpoints and resume need the run's fingerprint.");
        _options = options;
        _regime = regime;
        _channel = _parallel is { IsRoot: false } ? null : channel;
        _cancellation = cancellation;
        _fingerprint = fingerprint;
        _mixer = new BatchMixer(options);
    }

    /// <summary>
    /// Trains <paramref name="network"/>'s parameters that require a gradient, phase by phase (<see cref="TrainingPhase"/>), from
    /// the start or from <see cref="CnnFitOptions.ResumeFrom"/>; restores the best validation epoch's weights when there is
    /// validation data (the averaged weights' when they are used), makes every parameter trainable again and leaves the network in
    /// eval mode.
    /// </summary>
    /// <exception cref="InvalidOperationException">Every parameter is frozen, no training image could be used in an epoch, or the checkpoint is of another run.</exception>
    /// <exception cref="InvalidDataException">Every checkpoint to resume from is damaged.</exception>
    /// <exception cref="TrainingDivergedException">The loss became NaN or infinite.</exception>
    /// <exception cref="OperationCanceledException">The run was cancelled.</exception>
    public void Run<TBatch>(CnnNetwork network, TrainingSetup<TBatch> setup) where TBatch : ITrainingBatch
    {
        var o = _options;
        bool full = _regime.FullRecipe;
        var model = network.Model;
        var phases = _regime.Phases;
        var run = new RunState(new BestEpochTracker(o.EarlyStoppingMetric), full && o.ModelEmaDecay is { } decay ? new ModelEma(model, decay) : null,
            phases.Sum(p => p.Epochs),
            full && o.CheckpointDirectory is { } folder ? new RunCheckpoints(new CheckpointStore(folder, o.CheckpointsKept), _fingerprint!, _channel, _parallel is not { IsRoot: false }) : null);
        var validation = new EpochValidation(setup.Validation, run.Ema, o.UseModelEmaWeights);
        try
        {
            if (full && o.ResumeFrom is { } source)
            {
                run.Resume = CheckpointStore.Load(source, _fingerprint!, _channel);
                RunCheckpoints.Restore(run.Resume, model, run.Ema, run.Best);
                run.Epoch = run.Resume.Position.Epoch;
            }
            _parallel?.Synchronise(model);
            using var synchronisedNorms = o.SyncBatchNorm ? _parallel?.SynchroniseBatchNorm(model) : null;
            for (int p = 0; p < phases.Count; p++)
            {
                if (run.Resume is { } resume && resume.Position.Phase > p) continue;
                using var frozen = phases[p].Apply(model);
                if (!RunPhase(new PhaseContext<TBatch>(model, setup, validation, run, p, phases.Take(p).Sum(q => q.Epochs), phases[p]))) break;
            }
            run.Best.Restore(model);
            if (run.Ema is { } ema && o.UseModelEmaWeights && run.Best.Epoch == 0) ema.CopyInto(model);
            _parallel?.Complete(_channel, o);
        }
        catch (Exception ex) when (_parallel is not null)
        {
            _parallel.Abort(ex); // the other ranks would wait for this one forever
            throw;
        }
        finally
        {
            _parallel?.Dispose();
            run.Resume?.Dispose();
            run.Best.Dispose();
            run.Ema?.Dispose();
            NativeHeap.ReleaseFreed();
        }
        foreach (var p in model.parameters()) p.requires_grad = true;
        model.eval();
    }

    /// <summary>What lasts across phases: the best epoch, the weight average, the epoch counter, checkpoints and the resume point.</summary>
    private sealed class RunState(BestEpochTracker best, ModelEma? ema, int totalEpochs, RunCheckpoints? checkpoints)
    {
        public BestEpochTracker Best { get; } = best;
        public ModelEma? Ema { get; } = ema;
        public int TotalEpochs { get; } = totalEpochs;
        public RunCheckpoints? Checkpoints { get; } = checkpoints;
        public int Epoch { get; set; }

        /// <summary>The checkpoint being resumed from, until its phase's optimizer has taken its state.</summary>
        public TrainingCheckpoint? Resume { get; set; }
    }

    /// <summary>One phase of a run: what its epochs share.</summary>
    /// <param name="Model">The model.</param>
    /// <param name="Setup">The batches, objective and validation.</param>
    /// <param name="Validation">The epochs' validation.</param>
    /// <param name="Run">What lasts across phases.</param>
    /// <param name="Index">The phase's index.</param>
    /// <param name="FirstEpoch">Epochs of the phases before it.</param>
    /// <param name="Phase">The phase.</param>
    private sealed record PhaseContext<TBatch>(Backbone Model, TrainingSetup<TBatch> Setup, EpochValidation Validation, RunState Run, int Index, int FirstEpoch,
        TrainingPhase Phase) where TBatch : ITrainingBatch;

    /// <summary>A partly trained epoch's tallies: batches already trained on (when resuming mid-epoch), loss sum and images.</summary>
    private sealed class EpochTally
    {
        public int SkipBatches;
        public double LossSum;
        public long Seen;

        public (double LossSum, long Seen) Partial => (LossSum, Seen);
    }

    /// <summary>Runs a phase's epochs (the rest of them when resuming); false when early stopping or the regime ended the run.</summary>
    private bool RunPhase<TBatch>(PhaseContext<TBatch> phase) where TBatch : ITrainingBatch
    {
        var run = phase.Run;
        using var optimizer = new PhaseOptimizer(_options, _regime, phase.Model, phase.Phase, phase.Setup.Batches.BatchesPerEpoch, _parallel, _channel);
        var tally = new EpochTally();
        if (run.Resume is { } resume)
        {
            optimizer.Restore(resume);
            tally.SkipBatches = resume.Position.Batch;
            (tally.LossSum, tally.Seen) = resume.Partial;
            run.Resume = null;
            resume.Dispose();
        }
        while (run.Epoch - phase.FirstEpoch < phase.Phase.Epochs)
        {
            var clock = Stopwatch.StartNew();
            if (TrainEpoch(phase, optimizer, tally, clock) is not { } rate) return false;
            if (!EndEpoch(phase, optimizer, tally, rate, clock)) return false;
            tally = new EpochTally();
        }
        return true;
    }

    /// <summary>
    /// Trains on one epoch's batches (from where a resumed run left off): one objective call and one backward pass per batch, an
    /// update per accumulation group; the epoch's last rate, or null when the regime ended the run within the epoch.
    /// </summary>
    private double? TrainEpoch<TBatch>(PhaseContext<TBatch> phase, PhaseOptimizer optimizer, EpochTally tally, Stopwatch clock) where TBatch : ITrainingBatch
    {
        var (model, setup, run) = (phase.Model, phase.Setup, phase.Run);
        int epoch = run.Epoch + 1;
        int batches = setup.Batches.BatchesPerEpoch;
        bool full = _regime.FullRecipe;
        model.train();
        int batchIndex = 0;
        bool pending = false;
        double rate = optimizer.Rate;
        optimizer.ZeroGrad();
        setup.Objective.BeginEpoch();
        foreach (var batch in setup.Batches.Epoch(epoch - 1, _cancellation.Token))
        {
            _cancellation.ThrowIfCancellationRequested();
            batchIndex++;
            if (batchIndex <= tally.SkipBatches || batch.Count == 0) continue; // resumed mid-epoch: these were trained on before
            using var scope = NewDisposeScope();
            var step = setup.Objective.Step(model, batch, full ? _mixer.Decide(epoch - 1, batchIndex) : new MixDecision(1, null));
            double value = step.Loss.item<float>();
            if (!_regime.Accept(epoch, batchIndex, optimizer.Rate, value)) return null;
            bool due = optimizer.Backward(step.Loss, batchIndex);
            pending = true;
            tally.LossSum += value * batch.Count;
            tally.Seen += batch.Count;
            if (due)
            {
                rate = optimizer.Update(model, run.Ema);
                pending = false;
                if (_regime.Finished(optimizer.Steps)) return null;
                if (_options.CheckpointEverySteps is { } every && optimizer.Steps % every == 0 && batchIndex < batches)
                    run.Checkpoints?.Save(model, run.Ema, run.Best, optimizer, new TrainingPosition(phase.Index, epoch - 1, batchIndex, optimizer.Steps), tally.Partial);
            }
            if (full)
                _options.BatchCompleted?.Invoke(new BatchProgress(epoch, run.TotalEpochs, batchIndex, batches, tally.Seen, tally.LossSum / Math.Max(tally.Seen, 1), clock.Elapsed));
        }
        if (pending) rate = optimizer.Update(model, run.Ema);
        if (tally.Seen == 0)
            throw new InvalidOperationException("No training image could be used in this epoch (all were skipped as corrupt?).");
        return rate;
    }

    /// <summary>
    /// Validates and reports a trained epoch, offers it to the best-epoch tracker and writes its checkpoint; false when early
    /// stopping ends the run.
    /// </summary>
    private bool EndEpoch<TBatch>(PhaseContext<TBatch> phase, PhaseOptimizer optimizer, EpochTally tally, double rate, Stopwatch clock) where TBatch : ITrainingBatch
    {
        var (model, setup, run) = (phase.Model, phase.Setup, phase.Run);
        int epoch = run.Epoch + 1;
        double trainSeconds = clock.Elapsed.TotalSeconds;
        var (validation, averaged) = _parallel is { IsRoot: false } ? default : phase.Validation.Score(model, _cancellation.Token);
        if (_regime.FullRecipe) // the sweep reports nothing per epoch
        {
            long skipped = setup.Batches.SkippedCount;
            string line = setup.Objective.CompleteEpoch(new EpochSummary(epoch, tally.LossSum / tally.Seen, tally.Seen, rate, tally.Seen / Math.Max(trainSeconds, 1e-9),
                clock.Elapsed, validation, skipped));
            if (averaged is not null)
                line += $" (weight average: val loss {averaged.Loss:0.0000}{(averaged.Accuracy is { } a ? $", val acc {a:P2}" : "")})";
            _channel?.Info(MessageSensitivity.None, line);
            if (skipped > 0)
                _channel?.Warning(MessageSensitivity.None, $"{skipped} corrupt training images skipped so far.");
        }
        run.Epoch = epoch;
        bool stop = false;
        if (validation is not null && !phase.Validation.Offer(run.Best, epoch, validation, model) && _options.EarlyStoppingPatience is { } patience
            && epoch - run.Best.Epoch >= patience)
        {
            _channel?.Info(MessageSensitivity.None, $"Early stopping after epoch {epoch}: no improvement since epoch {run.Best.Epoch}.");
            stop = true;
        }
        if (_parallel is not null) stop = _parallel.FollowRoot(stop);
        // At a phase's end the next phase starts afresh (new optimizer and schedule): its checkpoint says so.
        bool phaseDone = run.Epoch - phase.FirstEpoch >= phase.Phase.Epochs;
        run.Checkpoints?.Save(model, run.Ema, run.Best, optimizer,
            phaseDone && !stop ? new TrainingPosition(phase.Index + 1, epoch, 0, 0) : new TrainingPosition(phase.Index, epoch, 0, optimizer.Steps), (0, 0), nextPhase: phaseDone && !stop);
        return !stop;
    }
}
