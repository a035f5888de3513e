using Cnn.Backbones.Models;
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Training.Checkpoints;

/// <summary>
/// A run's checkpoints from the loop's side: writes what a resumed run needs (weights, weight average, best epoch, optimizer and
/// loss scale, random generator, position, the partial epoch's tallies) and puts a checkpoint's state back.
/// </summary>
internal sealed class RunCheckpoints
{
    private readonly CheckpointStore _store;
    private readonly RunFingerprint _fingerprint;
    private readonly IChannel? _channel;
    private readonly bool _writes;

    /// <param name="store">The checkpoint folder.</param>
    /// <param name="fingerprint">What the run is, recorded in each checkpoint.</param>
    /// <param name="channel">Where written checkpoints are traced, or null.</param>
    /// <param name="writes">False for a process that only follows (a non-root rank under mpirun).</param>
    public RunCheckpoints(CheckpointStore store, RunFingerprint fingerprint, IChannel? channel, bool writes)
    {
        _store = store;
        _fingerprint = fingerprint;
        _channel = channel;
        _writes = writes;
    }

    /// <summary>
    /// Writes a checkpoint at <paramref name="position"/>; at a phase's end (<paramref name="nextPhase"/>) without optimizer state or
    /// loss scale, as the next phase starts with fresh ones.
    /// </summary>
    public void Save(Backbone model, ModelEma? ema, BestEpochTracker best, PhaseOptimizer optimizer, TrainingPosition position, (double LossSum, long Seen) partial,
        bool nextPhase = false)
    {
        if (!_writes) return;
        byte[] optimizerState = nextPhase ? [] : optimizer.SaveState();
        using var generator = torch.Generator.Default;
        using var random = generator.get_state();
        using var checkpoint = new TrainingCheckpoint
        {
            Position = position,
            Fingerprint = _fingerprint,
            Model = Copy(model.state_dict()),
            Ema = ema is not null ? Copy(model.state_dict().Keys.ToDictionary(k => k, k => ema[k])) : null,
            Best = best.Weights is { } weights ? Copy(weights) : null,
            BestScore = (best.Epoch, best.Score),
            Optimizer = optimizerState,
            Random = random.data<byte>().ToArray(),
            Partial = partial,
            LossScale = nextPhase ? null : optimizer.Scaler?.State,
        };
        string path = _store.Save(checkpoint);
        _channel?.Trace(MessageSensitivity.None, $"Checkpoint written: {path}");
    }

    /// <summary>Puts a checkpoint's weights, weight average, best epoch and random generator in place.</summary>
    /// <exception cref="InvalidDataException">The checkpoint lacks a weight or the average the run keeps.</exception>
    public static void Restore(TrainingCheckpoint checkpoint, Backbone model, ModelEma? ema, BestEpochTracker best)
    {
        using (no_grad())
        {
            foreach (var (name, value) in model.state_dict())
            {
                if (!checkpoint.Model.TryGetValue(name, out var saved))
                    throw new InvalidDataException($"The checkpoint has no '{name}': it was written by another network.");
                value.copy_(saved);
            }
            if (ema is not null)
            {
                if (checkpoint.Ema is null) throw new InvalidDataException("The checkpoint has no weight average, but ModelEmaDecay is set.");
                foreach (var (name, value) in checkpoint.Ema) ema[name].copy_(value);
            }
        }
        var weights = checkpoint.Best?.ToDictionary(kv => kv.Key, kv => kv.Value.clone(), StringComparer.Ordinal);
        best.Load(checkpoint.BestScore.Epoch, checkpoint.BestScore.Score, weights);
        using var state = torch.tensor(checkpoint.Random, ScalarType.Byte);
        using var generator = torch.Generator.Default;
        generator.set_state(state);
    }

    private static Dictionary<string, Tensor> Copy(IEnumerable<KeyValuePair<string, Tensor>> entries) =>
        entries.ToDictionary(kv => kv.Key, kv => kv.Value.detach().to(CPU).clone(), StringComparer.Ordinal);
}
