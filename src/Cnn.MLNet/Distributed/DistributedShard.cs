namespace Cnn.MLNet.Distributed;

/// <summary>
/// One rank's part of an epoch's order, as PyTorch's <c>DistributedSampler(drop_last=False)</c>: the order is padded to a multiple
/// of the rank count by repeating its start (as often as needed), and rank r takes positions r, r + N, r + 2N, … — disjoint slices
/// of equal length, so every rank runs the same number of steps.
/// </summary>
internal static class DistributedShard
{
    /// <summary>Samples each of <paramref name="shardCount"/> ranks gets from <paramref name="sampleCount"/>: ⌈n / N⌉ (0 when there are none).</summary>
    public static int Length(int sampleCount, int shardCount) => (sampleCount + shardCount - 1) / shardCount;

    /// <summary>Rank <paramref name="shardIndex"/>'s slice of <paramref name="order"/> (the order itself for one shard).</summary>
    public static int[] Slice(int[] order, int shardIndex, int shardCount)
    {
        if (shardCount == 1 || order.Length == 0) return order;
        var slice = new int[Length(order.Length, shardCount)];
        for (int i = 0; i < slice.Length; i++) slice[i] = order[(shardIndex + i * shardCount) % order.Length];
        return slice;
    }
}
