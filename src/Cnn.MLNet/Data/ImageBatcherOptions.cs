namespace Cnn.MLNet.Data;

/// <summary>How an <see cref="ImageBatcher"/> groups, orders and prepares samples.</summary>
internal sealed record ImageBatcherOptions
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

    /// <summary>
    /// Ranks an epoch is split across (data-parallel training): with N &gt; 1 the batcher yields only shard
    /// <see cref="ShardIndex"/> of every epoch's order, as PyTorch's <c>DistributedSampler</c> (padded to a multiple of N by
    /// repeating its start; rank r takes positions r, r + N, …). Default 1.
    /// </summary>
    public int ShardCount { get; init; } = 1;

    /// <summary>The shard this batcher yields, 0 … <see cref="ShardCount"/> − 1. Default 0.</summary>
    public int ShardIndex { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (BatchSize < 1) throw new ArgumentException($"BatchSize must be at least 1, got {BatchSize}.");
        if (MaxDegreeOfParallelism < 1) throw new ArgumentException($"MaxDegreeOfParallelism must be at least 1, got {MaxDegreeOfParallelism}.");
        if (ShardCount < 1) throw new ArgumentException($"ShardCount must be at least 1, got {ShardCount}.");
        if (ShardIndex < 0 || ShardIndex >= ShardCount) throw new ArgumentException($"ShardIndex must be in 0..{ShardCount - 1}, got {ShardIndex}.");
    }
}
