using Cnn.MLNet.Data;
using Cnn.MLNet.Distributed;
using Cnn.MLNet.Imaging;
using Cnn.Tests.Shared;

namespace Cnn.MLNet.Tests.Distributed;

/// <summary>Each rank's shard of an epoch, against PyTorch's <c>DistributedSampler</c>; the launch detection.</summary>
[TestClass]
public sealed class DistributedShardTests
{
    private static readonly (int Samples, int Ranks)[] Cases = [(10, 4), (12, 3), (5, 2), (3, 8), (7, 1), (1, 2)];

    /// <summary>The same slices as <c>DistributedSampler(range(n), num_replicas=N, rank=r, shuffle=False)</c>, padding included.</summary>
    [TestMethod]
    public void SlicesMatchPyTorchsDistributedSampler()
    {
        string expected = ReferencePython.Run("""
            import sys
            from torch.utils.data import DistributedSampler
            for case in sys.argv[1:]:
                n, N = map(int, case.split(","))
                print(";".join(",".join(map(str, DistributedSampler(range(n), num_replicas=N, rank=r, shuffle=False))) for r in range(N)))
            """, Cases.Select(c => $"{c.Samples},{c.Ranks}").ToArray());
        var lines = expected.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.HasCount(Cases.Length, lines);
        for (int k = 0; k < Cases.Length; k++)
        {
            var (n, ranks) = Cases[k];
            int[] order = Enumerable.Range(0, n).ToArray();
            string ours = string.Join(";", Enumerable.Range(0, ranks).Select(r => string.Join(",", DistributedShard.Slice(order, r, ranks))));
            Assert.AreEqual(lines[k].Trim(), ours, $"{n} samples on {ranks} ranks");
        }
    }

    /// <summary>Sharded batchers split the shuffled epoch into disjoint, equally long parts that together are the whole epoch.</summary>
    [TestMethod]
    public void ShardedBatchersCoverTheEpochDisjointlyWithEqualStepCounts()
    {
        var preprocessor = new ImagePreprocessor(new PreprocessOptions { Height = 8, Width = 8 });
        var options = new ImageBatcherOptions { BatchSize = 4, Shuffle = true, Seed = 3 };
        int[] whole = new ImageBatcher(preprocessor, options).GetEpochOrder(40, epoch: 2);
        var shards = Enumerable.Range(0, 2).Select(r => new ImageBatcher(preprocessor, options with { ShardIndex = r, ShardCount = 2 })).ToList();
        int[][] parts = shards.Select(b => b.GetEpochOrder(40, epoch: 2)).ToArray();
        CollectionAssert.AreEqual(whole.Where((_, i) => i % 2 == 0).ToArray(), parts[0]);
        CollectionAssert.AreEqual(whole.Where((_, i) => i % 2 == 1).ToArray(), parts[1]);
        Assert.AreEqual(5, shards[0].GetBatchCount(40));
        Assert.AreEqual(6, shards[1].GetBatchCount(41), "41 samples: padded to 42, 21 per rank: 6 batches of at most 4");
        // Step k of the two ranks together is step k of one process with twice the batch.
        var doubled = new ImageBatcher(preprocessor, options with { BatchSize = 8 }).GetEpochOrder(40, epoch: 2);
        for (int k = 0; k < 5; k++)
            CollectionAssert.AreEquivalent(doubled.Skip(8 * k).Take(8).ToArray(), parts.SelectMany(p => p.Skip(4 * k).Take(4)).ToArray(), $"step {k}");
        Assert.ThrowsExactly<ArgumentException>(() => new ImageBatcher(preprocessor, options with { ShardIndex = 2, ShardCount = 2 }));
    }

    [TestMethod]
    public void LaunchIsDetectedFromOpenMpiOrPmiVariablesOnly()
    {
        static Func<string, string?> Env(params (string, string)[] pairs) => name => pairs.FirstOrDefault(p => p.Item1 == name).Item2;
        Assert.IsNull(MpiLaunch.Detect(Env()));
        Assert.IsNull(MpiLaunch.Detect(Env(("OMPI_COMM_WORLD_RANK", "0"), ("OMPI_COMM_WORLD_SIZE", "1"))), "one rank is an ordinary run");
        Assert.AreEqual((1, 4), MpiLaunch.Detect(Env(("OMPI_COMM_WORLD_RANK", "1"), ("OMPI_COMM_WORLD_SIZE", "4"))));
        Assert.AreEqual((2, 3), MpiLaunch.Detect(Env(("PMI_RANK", "2"), ("PMI_SIZE", "3"))));
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => MpiLaunch.Detect(Env(("PMI_RANK", "5"), ("PMI_SIZE", "3"))));
        StringAssert.Contains(error.Message, "PMI_RANK=5");
    }
}
