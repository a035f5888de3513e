using Cnn.MLNet;

namespace Cnn.Examples.GuideSnippets;

/// <summary>The snippets of docs/guides/data-parallel.md.</summary>
internal static class DataParallel
{
    /// <summary>Options of a data-parallel run (started by mpirun; nothing changes without it).</summary>
    public static CnnTrainerOptions Options() =>
        #region options
        new CnnTrainerOptions
        {
            BatchSize = 32,                 // per rank: the global batch is N × 32
            LearningRate = 1e-3 * 4,        // yours to scale: the linear rule for 4 ranks, with warm-up
            WarmupEpochs = 1,
            SyncBatchNorm = true,           // --sync-bn: BatchNorm statistics of the global batch
            DataParallelCompleted = report => Console.WriteLine(report),   // rank 0: steps, gradient bytes, allreduce time
        };
        #endregion
}
