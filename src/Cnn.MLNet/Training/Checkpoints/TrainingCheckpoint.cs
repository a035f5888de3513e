using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Cnn.Backbones.Weights;
using Cnn.MLNet.Persistence;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Training.Checkpoints;

/// <summary>Where a run stands: after <see cref="Epoch"/> epochs and <see cref="Batch"/> batches of the next, at optimizer step <see cref="Step"/> of phase <see cref="Phase"/>.</summary>
/// <param name="Phase">Index of the phase (<see cref="TrainingPhase"/>) being run.</param>
/// <param name="Epoch">Epochs completed over the whole run.</param>
/// <param name="Batch">Batches of epoch <see cref="Epoch"/> + 1 already trained on (0 at an epoch's end).</param>
/// <param name="Step">Optimizer steps taken in the phase (the schedule's position).</param>
internal readonly record struct TrainingPosition(int Phase, int Epoch, int Batch, long Step);

/// <summary>
/// Everything a run needs to continue as if it had not stopped: the network's weights and buffers, the weight average, the
/// optimizer's state (TorchSharp's format), TorchSharp's random generator, the best epoch's weights and score, the partial
/// epoch's running loss, float16's loss scale, and the <see cref="RunFingerprint"/>. Stored as one safetensors file (tensors under <c>model/</c>,
/// <c>ema/</c>, <c>best/</c>, the optimizer and generator as byte tensors, the rest as metadata) with a SHA-256 of all its
/// tensor bytes, written atomically.
/// </summary>
internal sealed class TrainingCheckpoint : IDisposable
{
    private const string Format = "cnn.mlnet/checkpoint";

    /// <summary>The position.</summary>
    public required TrainingPosition Position { get; init; }

    /// <summary>The run it belongs to.</summary>
    public required RunFingerprint Fingerprint { get; init; }

    /// <summary>The network's state dict (CPU copies).</summary>
    public required Dictionary<string, Tensor> Model { get; init; }

    /// <summary>The weight average's entries, or null without one.</summary>
    public Dictionary<string, Tensor>? Ema { get; init; }

    /// <summary>The best epoch's weights, or null before any validated epoch.</summary>
    public Dictionary<string, Tensor>? Best { get; init; }

    /// <summary>The best epoch (0 = none) and its score.</summary>
    public (int Epoch, double Score) BestScore { get; init; }

    /// <summary>TorchSharp's optimizer state bytes.</summary>
    public required byte[] Optimizer { get; init; }

    /// <summary>TorchSharp's default generator state.</summary>
    public required byte[] Random { get; init; }

    /// <summary>The loss sum and images of the partial epoch (0 at an epoch's end).</summary>
    public (double LossSum, long Seen) Partial { get; init; }

    /// <summary>Float16's loss scale (as timm keeps <c>GradScaler</c>'s state), or null where none is used.</summary>
    public LossScaleState? LossScale { get; init; }

    /// <summary>Writes the checkpoint to <paramref name="path"/> atomically (write, flush, rename).</summary>
    public void Save(string path)
    {
        var tensors = new List<KeyValuePair<string, Tensor>>();
        void Add(string prefix, Dictionary<string, Tensor>? entries)
        {
            if (entries is null) return;
            foreach (var (name, value) in entries) tensors.Add(new(prefix + name, value));
        }
        Add("model/", Model);
        Add("ema/", Ema);
        Add("best/", Best);
        using var optimizer = torch.tensor(Optimizer, ScalarType.Byte);
        using var random = torch.tensor(Random, ScalarType.Byte);
        tensors.Add(new("optimizer", optimizer));
        tensors.Add(new("random", random));
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["format"] = Format,
            ["position"] = JsonSerializer.Serialize(new[] { Position.Phase, Position.Epoch, Position.Batch, Position.Step }),
            ["run"] = Fingerprint.ToText(),
            ["best"] = string.Create(CultureInfo.InvariantCulture, $"{BestScore.Epoch} {BestScore.Score:R}"),
            ["partial"] = string.Create(CultureInfo.InvariantCulture, $"{Partial.LossSum:R} {Partial.Seen}"),
            ["sha256"] = Hash(tensors),
        };
        if (LossScale is { } scale)
            metadata["loss-scale"] = string.Create(CultureInfo.InvariantCulture, $"{scale.Scale:R} {scale.GrowthTracker}");
        AtomicFile.Write(path, overwriteReadOnly: false, temporary => SafeTensors.Write(temporary, tensors, metadata));
    }

    /// <summary>Reads a checkpoint and checks its hash.</summary>
    /// <exception cref="InvalidDataException">The file is not a whole checkpoint of this format (truncated, altered, other file).</exception>
    public static TrainingCheckpoint Load(string path)
    {
        IReadOnlyDictionary<string, string> metadata;
        StateDict tensors;
        try
        {
            metadata = SafeTensors.ReadMetadata(path);
            tensors = SafeTensors.Read(path);
        }
        catch (WeightFileException ex)
        {
            throw new InvalidDataException($"Checkpoint '{path}' is damaged: {ex.Message}", ex);
        }
        try
        {
            if (metadata.GetValueOrDefault("format") != Format) throw new InvalidDataException($"'{path}' is not a training checkpoint.");
            if (Hash(tensors.ToList()) != metadata.GetValueOrDefault("sha256"))
                throw new InvalidDataException($"Checkpoint '{path}' is damaged: its tensors do not match the SHA-256 it was written with.");
            var position = JsonSerializer.Deserialize<long[]>(metadata["position"])!;
            var best = metadata["best"].Split(' ');
            var partial = metadata["partial"].Split(' ');
            var lossScale = metadata.GetValueOrDefault("loss-scale")?.Split(' ');
            Dictionary<string, Tensor>? Take(string prefix)
            {
                var entries = tensors.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal))
                    .ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value, StringComparer.Ordinal);
                return entries.Count == 0 ? null : entries;
            }
            return new TrainingCheckpoint
            {
                Position = new TrainingPosition((int)position[0], (int)position[1], (int)position[2], position[3]),
                Fingerprint = RunFingerprint.Parse(metadata["run"]),
                Model = Take("model/") ?? throw new InvalidDataException($"Checkpoint '{path}' has no network weights."),
                Ema = Take("ema/"),
                Best = Take("best/"),
                BestScore = (int.Parse(best[0], CultureInfo.InvariantCulture), double.Parse(best[1], CultureInfo.InvariantCulture)),
                Optimizer = tensors["optimizer"].data<byte>().ToArray(),
                Random = tensors["random"].data<byte>().ToArray(),
                Partial = (double.Parse(partial[0], CultureInfo.InvariantCulture), long.Parse(partial[1], CultureInfo.InvariantCulture)),
                LossScale = lossScale is null ? null : ParseLossScale(path, lossScale),
            };
        }
        catch (Exception ex) when (ex is KeyNotFoundException or FormatException or OverflowException or JsonException or IndexOutOfRangeException)
        {
            throw new InvalidDataException($"Checkpoint '{path}' is damaged: {ex.Message}", ex);
        }
    }

    private static LossScaleState ParseLossScale(string path, string[] parts)
    {
        var state = new LossScaleState(double.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture));
        if (!state.IsPlausible)
            throw new InvalidDataException($"Checkpoint '{path}' is damaged: its loss scale ({state.Scale}, {state.GrowthTracker} finite steps) is not one training reaches.");
        return state;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var entries in new[] { Model, Ema, Best })
            if (entries is not null)
                foreach (var tensor in entries.Values) tensor.Dispose();
    }

    private static string Hash(IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        RunFingerprint.AppendStateDict(hash, tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal));
        return Convert.ToHexString(hash.GetHashAndReset());
    }
}
