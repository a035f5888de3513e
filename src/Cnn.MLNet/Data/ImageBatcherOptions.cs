namespace Cnn.MLNet.Data;

/// <summary>How an <see cref="ImageBatcher"/> groups, orders and prepares samples.</summary>
public sealed record ImageBatcherOptions
{
    /// <summary>Images per batch. Default 32.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Worker threads decoding and preprocessing a batch. Default: all cores.</summary>
    public int MaxDegreeOfParallelism { get; init; } = Environment.ProcessorCount;

    /// <summary>Apply training augmentation (RandomResizedCrop + horizontal flip) instead of the evaluation transform. Default false.</summary>
    public bool Augment { get; init; }

    /// <summary>Shuffle the sample order each epoch (seeded by <see cref="Seed"/> and the epoch number). Default false.</summary>
    public bool Shuffle { get; init; }

    /// <summary>Seed of the per-epoch shuffle and of the per-sample augmentation. Default 0.</summary>
    public int Seed { get; init; }

    /// <summary>Leave out the last batch of an epoch when it is smaller than <see cref="BatchSize"/>. Default false.</summary>
    public bool DropLast { get; init; }

    /// <summary>
    /// Leave corrupt or unreadable images out of their batch (which then holds fewer images) and count them in
    /// <see cref="ImageBatch.Skipped"/> and <see cref="ImageBatcher.SkippedCount"/>, instead of failing. Default false.
    /// </summary>
    public bool SkipCorruptImages { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (BatchSize < 1) throw new ArgumentException($"BatchSize must be at least 1, got {BatchSize}.");
        if (MaxDegreeOfParallelism < 1) throw new ArgumentException($"MaxDegreeOfParallelism must be at least 1, got {MaxDegreeOfParallelism}.");
    }
}
