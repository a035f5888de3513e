using System.Globalization;

namespace Cnn.MLNet.Distributed;

/// <summary>The gradient traffic of a data-parallel (MPI) training run, as rank 0 measured it.</summary>
/// <param name="Ranks">Processes that trained together.</param>
/// <param name="Steps">Optimizer steps, each with its gradients averaged.</param>
/// <param name="GradientBytes">Bytes of float32 gradients each rank allreduces per step.</param>
/// <param name="AllreducesPerStep">Allreduce calls per step (buckets).</param>
/// <param name="InAllreduce">Time spent inside the gradient allreduce calls, over every step (including waiting for slower ranks).</param>
/// <param name="SynchronisedNormLayers">BatchNorm layers synchronised across the ranks (<see cref="CnnFitOptions.SyncBatchNorm"/>); 0 without.</param>
public sealed record DataParallelReport(int Ranks, long Steps, long GradientBytes, int AllreducesPerStep, TimeSpan InAllreduce, int SynchronisedNormLayers = 0)
{
    /// <summary>Mean time inside allreduce per step.</summary>
    public TimeSpan PerStep => Steps == 0 ? TimeSpan.Zero : InAllreduce / Steps;

    /// <summary>One line, e.g. "data-parallel: 2 ranks, 120 steps, 44.7 MB of gradients per step in 2 allreduces, 31.2 ms per step in allreduce".</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"data-parallel: {Ranks} ranks, {Steps} steps, {GradientBytes / 1048576.0:0.0} MB of gradients per step in {AllreducesPerStep} allreduces, " +
        $"{PerStep.TotalMilliseconds:0.0} ms per step in allreduce") +
        (SynchronisedNormLayers > 0 ? $"; BatchNorm synchronised in {SynchronisedNormLayers} layers" : "");
}
