using System.Globalization;
using Microsoft.ML.Runtime;

namespace Cnn.MLNet.Training.Checkpoints;

/// <summary>
/// A run's checkpoint folder: files <c>checkpoint-EEEE-BBBBBB.cnnckpt</c> (epochs completed, batches into the next) written
/// atomically, at most <see cref="CnnFitOptions.CheckpointsKept"/> kept; and finding the checkpoint to resume from: the newest
/// whole one, falling back to the one before when the newest is damaged.
/// </summary>
internal sealed class CheckpointStore
{
    /// <summary>File extension of checkpoints.</summary>
    public const string Extension = ".cnnckpt";

    private readonly string _directory;
    private readonly int _kept;

    /// <param name="directory">The folder (created if missing).</param>
    /// <param name="kept">How many checkpoints to keep, at least 1.</param>
    public CheckpointStore(string directory, int kept)
    {
        _directory = directory;
        _kept = kept;
        Directory.CreateDirectory(directory);
    }

    /// <summary>Writes <paramref name="checkpoint"/> and removes all but the newest checkpoints; returns its path.</summary>
    public string Save(TrainingCheckpoint checkpoint)
    {
        var p = checkpoint.Position;
        string path = Path.Combine(_directory, string.Create(CultureInfo.InvariantCulture, $"checkpoint-{p.Epoch:D4}-{p.Batch:D6}{Extension}"));
        Persistence.AtomicFile.RemoveLeftoversIn(_directory, "checkpoint-");
        checkpoint.Save(path);
        foreach (var old in List(_directory).Skip(_kept))
        {
            try { File.Delete(old); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        return path;
    }

    /// <summary>The checkpoints in <paramref name="directory"/>, newest first.</summary>
    public static IReadOnlyList<string> List(string directory) =>
        Directory.Exists(directory)
            ? Directory.GetFiles(directory, "checkpoint-*" + Extension).OrderByDescending(f => Path.GetFileName(f), StringComparer.Ordinal).ToArray()
            : [];

    /// <summary>
    /// The checkpoint to resume from: <paramref name="source"/> itself when it is a file; otherwise the newest whole checkpoint of
    /// the folder (a damaged one is reported and the one before it used). The run's fingerprint must equal the checkpoint's.
    /// </summary>
    /// <exception cref="FileNotFoundException">There is no checkpoint there.</exception>
    /// <exception cref="InvalidDataException">The file (or every checkpoint of the folder) is damaged.</exception>
    /// <exception cref="InvalidOperationException">The checkpoint belongs to a different run; the message names the first difference.</exception>
    public static TrainingCheckpoint Load(string source, RunFingerprint run, IChannel? channel)
    {
        IReadOnlyList<string> candidates = File.Exists(source) ? [source] : List(source);
        if (candidates.Count == 0)
            throw new FileNotFoundException(Directory.Exists(source)
                ? $"No checkpoint (checkpoint-*{Extension}) in '{source}' to resume from: it is written there by a run with CheckpointDirectory (cnn train --checkpoint-dir)."
                : $"Nothing to resume from at '{source}': give a checkpoint file or the folder a run wrote its checkpoints to.", source);
        InvalidDataException? damage = null;
        foreach (var path in candidates)
        {
            TrainingCheckpoint checkpoint;
            try
            {
                checkpoint = TrainingCheckpoint.Load(path);
            }
            catch (InvalidDataException ex)
            {
                channel?.Warning(MessageSensitivity.None, ex.Message + (candidates.Count > 1 ? " Trying the one before." : ""));
                damage ??= ex;
                continue;
            }
            if (run.Difference(checkpoint.Fingerprint) is { } difference)
            {
                checkpoint.Dispose();
                throw new InvalidOperationException($"Checkpoint '{path}' is of another run and cannot be resumed with these settings: {difference}. " +
                                                    "Resume with the same data and options, or start a new run in another checkpoint folder.");
            }
            channel?.Info(MessageSensitivity.None, $"Resuming from '{path}' (after epoch {checkpoint.Position.Epoch}" +
                                                   (checkpoint.Position.Batch > 0 ? $" and {checkpoint.Position.Batch} batches of the next)." : ")."));
            return checkpoint;
        }
        throw new InvalidDataException(candidates.Count == 1 ? damage!.Message : $"Every checkpoint in '{source}' is damaged; the newest: {damage!.Message}", damage);
    }
}
