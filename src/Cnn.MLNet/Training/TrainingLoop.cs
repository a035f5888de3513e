using System.Diagnostics;
using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.MLNet.Distributed;
using Cnn.MLNet.Mapping;
using Cnn.MLNet.Networks;
using Cnn.MLNet.Training.Checkpoints;
using Microsoft.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.MLNet.Training;

/// <summary>
/// The one training loop of fine-tuning and distillation: phases (fastai's frozen then unfrozen fine-tuning) of epochs of the
/// objective's prefetched batches, mixed (mixup/CutMix) when asked; AdamW or SGD over parameter groups (discriminative rates, no
/// weight decay on norms and biases) with warm-up and the chosen decay, gradient accumulation and clipping; an average of the
/// weights (EMA); checkpoints and resume; cancellation within one batch; NaN/Inf detection; validation, early stopping and
/// best-epoch restore; per-epoch logging through the ML.NET host. What is optimised is the <see cref="ITrainingObjective{TBatch}"/>'s business.
/// </summary>
internal sealed class TrainingLoop
{
    private readonly CnnFitOptions _options;
    private readonly IChannel? _channel;
    private readonly FitCancellation _cancellation;
    private readonly RunFingerprint? _fingerprint;
    private readonly DataParallelTraining? _parallel = DataParallelTraining.FromEnvironment(); // under mpirun only

    /// <param name="options">The run's options (optimizer, schedule, epochs, early stopping, checkpoints).</param>
    /// <param name="channel">Where progress is logged, or null.</param>
    /// <param name="cancellation">Stops the run before the next batch (the options' token or the MLContext's cancellation).</param>
    /// <param name="fingerprint">What the run is (recorded in checkpoints, compared on resume); needed with checkpoints or resume.</param>
    public TrainingLoop(CnnFitOptions options, IChannel? channel, FitCancellation cancellation, RunFingerprint? fingerprint = null)
    {
        if ((options.CheckpointDirectory is not null || options.ResumeFrom is not null) && fingerprint is null)
            throw new ArgumentNullException(nameof(fingerprint), "Checkpoints and resume need the run's fingerprint.");
        _options = options;
        _channel = _parallel is { IsRoot: false } ? null : channel;
        _cancellation = cancellation;
        _fingerprint = fingerprint;
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
    public void Run<TBatch>(CnnNetwork network, ITrainingObjective<TBatch> objective) where TBatch : ITrainingBatch
    {
        var o = _options;
        var model = network.Model;
        var phases = TrainingPhase.For(o);
        var run = new RunState(new BestEpochTracker(o.EarlyStoppingMetric), o.ModelEmaDecay is { } decay ? new ModelEma(model, decay) : null,
            phases.Sum(p => p.Epochs), o.CheckpointDirectory is { } folder ? new CheckpointStore(folder, o.CheckpointsKept) : null);
        try
        {
            if (o.ResumeFrom is { } source) run.Resume = Restore(CheckpointStore.Load(source, _fingerprint!, _channel), model, run);
            _parallel?.Synchronise(model);
            using var synchronisedNorms = o.SyncBatchNorm ? _parallel?.SynchroniseBatchNorm(model) : null;
            for (int p = 0; p < phases.Count; p++)
            {
                if (run.Resume is { } resume && resume.Position.Phase > p) continue;
                using var frozen = phases[p].Apply(model);
                if (!RunPhase(network, objective, phases, p, run)) break;
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
        }
        foreach (var p in model.parameters()) p.requires_grad = true;
        model.eval();
    }

    /// <summary>What lasts across phases: the best epoch, the weight average, the epoch counter, checkpoints and the resume point.</summary>
    private sealed class RunState(BestEpochTracker best, ModelEma? ema, int totalEpochs, CheckpointStore? checkpoints)
    {
        public BestEpochTracker Best { get; } = best;
        public ModelEma? Ema { get; } = ema;
        public int TotalEpochs { get; } = totalEpochs;
        public CheckpointStore? Checkpoints { get; } = checkpoints;
        public int Epoch { get; set; }

        /// <summary>The checkpoint being resumed from, until its phase's optimizer has taken its state.</summary>
        public TrainingCheckpoint? Resume { get; set; }
    }

    /// <summary>Puts a checkpoint's weights, average, best epoch and random generator in place; returns it for its position and optimizer.</summary>
    private static TrainingCheckpoint Restore(TrainingCheckpoint checkpoint, Backbone model, RunState run)
    {
        using (no_grad())
        {
            foreach (var (name, value) in model.state_dict())
            {
                if (!checkpoint.Model.TryGetValue(name, out var saved))
                    throw new InvalidDataException($"The checkpoint has no '{name}': it was written by another network.");
                value.copy_(saved);
            }
            if (run.Ema is { } ema)
            {
                if (checkpoint.Ema is null) throw new InvalidDataException("The checkpoint has no weight average, but ModelEmaDecay is set.");
                foreach (var (name, value) in checkpoint.Ema) ema[name].copy_(value);
            }
        }
        var best = checkpoint.Best?.ToDictionary(kv => kv.Key, kv => kv.Value.clone(), StringComparer.Ordinal);
        run.Best.Load(checkpoint.BestScore.Epoch, checkpoint.BestScore.Score, best);
        using var state = torch.tensor(checkpoint.Random, ScalarType.Byte);
        using var generator = torch.Generator.Default;
        generator.set_state(state);
        run.Epoch = checkpoint.Position.Epoch;
        return checkpoint;
    }

    /// <summary>Runs phase <paramref name="index"/>'s epochs (the rest of them when resuming); false when early stopping ended the run.</summary>
    private bool RunPhase<TBatch>(CnnNetwork network, ITrainingObjective<TBatch> objective, IReadOnlyList<TrainingPhase> phases, int index, RunState run)
        where TBatch : ITrainingBatch
    {
        var o = _options;
        var phase = phases[index];
        var token = _cancellation.Token;
        var model = network.Model;
        var groups = ParameterGroups.Build(model, o, phase.Spread);
        if (groups.Count == 0)
            throw new InvalidOperationException("Every parameter is frozen: nothing would train. Use a smaller FreezeUpToStage or FreezeMode.Backbone.");
        var trainable = groups.SelectMany(g => g.Parameters).ToList();
        using var optimizer = OptimizationSetup.CreateOptimizer(o, groups);
        int batches = objective.StepsPerEpoch;
        int accumulation = o.AccumulationSteps;
        int updatesPerEpoch = (batches + accumulation - 1) / accumulation;
        var schedule = OptimizationSetup.Schedule(o, updatesPerEpoch, phase.Epochs);
        var mixer = new BatchMixer(o);
        // Float16 (CUDA) needs loss scaling; bfloat16 and float32 do not.
        var scaler = model.Compute.ReducedType == ScalarType.Float16 ? new LossScaler(o.InitialLossScale, o.LossScaleGrowthInterval) : null;
        int firstEpoch = phases.Take(index).Sum(p => p.Epochs);
        long step = 0;
        int skipBatches = 0;
        double lossSum = 0;
        long seen = 0;
        if (run.Resume is { } resume)
        {
            if (resume.Optimizer.Length > 0) // empty when the checkpoint ended the previous phase: this one starts afresh
                using (var reader = new BinaryReader(new MemoryStream(resume.Optimizer))) ((OptimizerHelper)optimizer).load_state_dict(reader);
            step = resume.Position.Step;
            skipBatches = resume.Position.Batch;
            (lossSum, seen) = resume.Partial;
            if (scaler is not null && resume.LossScale is { } lossScale) scaler.Restore(lossScale);
            run.Resume = null;
            resume.Dispose();
        }
        while (run.Epoch - firstEpoch < phase.Epochs)
        {
            int epoch = run.Epoch + 1;
            var clock = Stopwatch.StartNew();
            model.train();
            int batchIndex = 0, pending = 0;
            double rate = schedule.RateAt(step);
            optimizer.zero_grad();
            foreach (var batch in objective.Batches(epoch - 1, token))
            {
                _cancellation.ThrowIfCancellationRequested();
                batchIndex++;
                if (batchIndex <= skipBatches || batch.Count == 0) continue; // resumed mid-epoch: these were trained on before
                using var scope = NewDisposeScope();
                var input = objective.Input(batch, mixer.Decide(epoch - 1, batchIndex));
                var loss = objective.Loss(objective.Forward(model, input), batch);
                double value = loss.item<float>();
                if (!double.IsFinite(value))
                    throw new TrainingDivergedException(epoch, batchIndex, value, schedule.RateAt(step));
                // Each batch's loss is divided by the size of its accumulation group, so a group's gradient is their mean.
                int groupStart = (batchIndex - 1) / accumulation * accumulation;
                var groupLoss = loss.DividedBy(Math.Min(accumulation, batches - groupStart));
                (scaler is null ? groupLoss : scaler.ScaleLoss(groupLoss)).backward();
                pending++;
                lossSum += value * batch.Count;
                seen += batch.Count;
                if (batchIndex % accumulation == 0 || batchIndex >= batches)
                {
                    rate = Update(optimizer, groups, trainable, schedule, step++, model, run.Ema, scaler);
                    pending = 0;
                    if (o.CheckpointEverySteps is { } every && step % every == 0 && batchIndex < batches)
                        SaveCheckpoint(run, model, optimizer, scaler, new TrainingPosition(index, epoch - 1, batchIndex, step), (lossSum, seen));
                }
                o.BatchCompleted?.Invoke(new BatchProgress(epoch, run.TotalEpochs, batchIndex, batches, seen, lossSum / Math.Max(seen, 1), clock.Elapsed));
            }
            if (pending > 0) rate = Update(optimizer, groups, trainable, schedule, step++, model, run.Ema, scaler);
            if (seen == 0)
                throw new InvalidOperationException("No training image could be used in this epoch (all were skipped as corrupt?).");
            double trainSeconds = clock.Elapsed.TotalSeconds;
            var (validation, averaged) = _parallel is { IsRoot: false } ? default : Validate(objective, model, run, token);
            string line = objective.CompleteEpoch(new EpochSummary(epoch, lossSum / seen, seen, rate, seen / Math.Max(trainSeconds, 1e-9), clock.Elapsed, validation, objective.SkippedCount));
            if (averaged is not null)
                line += $" (weight average: val loss {averaged.Loss:0.0000}{(averaged.Accuracy is { } a ? $", val acc {a:P2}" : "")})";
            _channel?.Info(MessageSensitivity.None, line);
            if (objective.SkippedCount > 0)
                _channel?.Warning(MessageSensitivity.None, $"{objective.SkippedCount} corrupt training images skipped so far.");
            run.Epoch = epoch;
            skipBatches = 0;
            lossSum = 0;
            seen = 0;
            bool stop = false;
            if (validation is not null && !Offer(run, epoch, validation, model) && o.EarlyStoppingPatience is { } patience && epoch - run.Best.Epoch >= patience)
            {
                _channel?.Info(MessageSensitivity.None, $"Early stopping after epoch {epoch}: no improvement since epoch {run.Best.Epoch}.");
                stop = true;
            }
            if (_parallel is not null) stop = _parallel.FollowRoot(stop);
            // At a phase's end the next phase starts afresh (new optimizer and schedule): its checkpoint says so.
            bool phaseDone = run.Epoch - firstEpoch >= phase.Epochs;
            SaveCheckpoint(run, model, optimizer, scaler, phaseDone && !stop ? new TrainingPosition(index + 1, epoch, 0, 0) : new TrainingPosition(index, epoch, 0, step), (0, 0),
                nextPhase: phaseDone && !stop);
            if (stop) return false;
        }
        return true;
    }

    /// <summary>Writes a checkpoint when the run keeps them.</summary>
    private void SaveCheckpoint(RunState run, Backbone model, torch.optim.Optimizer optimizer, LossScaler? scaler, TrainingPosition position, (double LossSum, long Seen) partial,
        bool nextPhase = false)
    {
        if (run.Checkpoints is not { } store || _parallel is { IsRoot: false }) return;
        byte[] optimizerState = [];
        if (!nextPhase)
        {
            using var buffer = new MemoryStream();
            using (var writer = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true)) ((OptimizerHelper)optimizer).save_state_dict(writer);
            optimizerState = buffer.ToArray();
        }
        using var generator = torch.Generator.Default;
        using var random = generator.get_state();
        using var checkpoint = new TrainingCheckpoint
        {
            Position = position,
            Fingerprint = _fingerprint!,
            Model = Copy(model.state_dict()),
            Ema = run.Ema is { } ema ? Copy(model.state_dict().Keys.ToDictionary(k => k, k => ema[k])) : null,
            Best = run.Best.Weights is { } best ? Copy(best) : null,
            BestScore = (run.Best.Epoch, run.Best.Score),
            Optimizer = optimizerState,
            Random = random.data<byte>().ToArray(),
            Partial = partial,
            LossScale = nextPhase ? null : scaler?.State, // the next phase starts with a fresh scaler, as with a fresh optimizer
        };
        string path = store.Save(checkpoint);
        _channel?.Trace(MessageSensitivity.None, $"Checkpoint written: {path}");
    }

    private static Dictionary<string, Tensor> Copy(IEnumerable<KeyValuePair<string, Tensor>> entries) =>
        entries.ToDictionary(kv => kv.Key, kv => kv.Value.detach().to(CPU).clone(), StringComparer.Ordinal);

    /// <summary>
    /// One optimizer step at the schedule's rate for <paramref name="step"/>: average across processes, unscale (float16), clip,
    /// step, clear, update the average. A float16 step whose gradients overflowed is skipped, as PyTorch's <c>GradScaler</c> does.
    /// </summary>
    private double Update(torch.optim.Optimizer optimizer, IReadOnlyList<ParameterGroup> groups, List<Parameter> trainable,
        LearningRateSchedule schedule, long step, Backbone model, ModelEma? ema, LossScaler? scaler)
    {
        double rate = schedule.RateAt(step);
        OptimizationSetup.SetLearningRate(optimizer, groups, rate);
        _parallel?.AverageGradients(trainable);
        if (scaler is not null && !scaler.UnscaleAndUpdate(trainable))
        {
            _channel?.Trace(MessageSensitivity.None, $"Step {step + 1} skipped: a float16 gradient overflowed; loss scale now {scaler.Scale}.");
            return rate;
        }
        if (_options.ClipGradNorm is { } maxNorm)
            nn.utils.clip_grad_norm_(trainable, maxNorm);
        optimizer.step();
        optimizer.zero_grad();
        ema?.Update(model);
        return rate;
    }

    /// <summary>
    /// The epoch's validation score: of the averaged weights when they are the run's result, otherwise of the trained weights;
    /// and the other one's score (the average's, reported only) when a weight average is kept but not used.
    /// </summary>
    private (ValidationScore? Score, ValidationScore? Averaged) Validate<TBatch>(ITrainingObjective<TBatch> objective, Backbone model, RunState run, CancellationToken token)
        where TBatch : ITrainingBatch
    {
        if (run.Ema is not { } ema) return (objective.Validate(model, token), null);
        ValidationScore? averaged;
        using (ema.SwapInto(model)) averaged = objective.Validate(model, token);
        return _options.UseModelEmaWeights ? (averaged, null) : (objective.Validate(model, token), averaged);
    }

    /// <summary>Offers the epoch to the best-epoch tracker with the weights that were validated; true when it improved.</summary>
    private bool Offer(RunState run, int epoch, ValidationScore validation, Backbone model)
    {
        if (run.Ema is not { } ema || !_options.UseModelEmaWeights) return run.Best.Offer(epoch, validation, model);
        using (ema.SwapInto(model)) return run.Best.Offer(epoch, validation, model);
    }
}
