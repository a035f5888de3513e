namespace Cnn.MLNet.Training;

/// <summary>Where an epoch stands after one optimizer step; passed to <see cref="CnnFitOptions.BatchCompleted"/>.</summary>
/// <param name="Epoch">1-based epoch number.</param>
/// <param name="Epochs">Epochs of the run.</param>
/// <param name="Batch">Batches done in this epoch (1-based).</param>
/// <param name="Batches">Batches of the epoch.</param>
/// <param name="Images">Images trained on in this epoch so far.</param>
/// <param name="RunningLoss">Mean loss per image over the epoch so far.</param>
/// <param name="Elapsed">Time since the epoch started.</param>
public sealed record BatchProgress(int Epoch, int Epochs, int Batch, int Batches, long Images, double RunningLoss, TimeSpan Elapsed)
{
    /// <summary>Training throughput of the epoch so far.</summary>
    public double ImagesPerSecond => Images / Math.Max(Elapsed.TotalSeconds, 1e-9);

    /// <summary>Estimated time to the end of the epoch at the throughput so far.</summary>
    public TimeSpan Remaining => Batch == 0 ? TimeSpan.Zero : Elapsed / Batch * (Batches - Batch);
}
