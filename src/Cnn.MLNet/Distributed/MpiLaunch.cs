namespace Cnn.MLNet.Distributed;

/// <summary>
/// Whether this process was started by <c>mpirun</c>/<c>mpiexec</c> as one rank of several, read from the variables the launchers
/// set (Open MPI's <c>OMPI_COMM_WORLD_RANK</c>/<c>OMPI_COMM_WORLD_SIZE</c>, MPICH/Hydra's and Slurm PMI's <c>PMI_RANK</c>/<c>PMI_SIZE</c>)
/// without loading MPI: a process that was not launched so never loads it.
/// </summary>
public static class MpiLaunch
{
    /// <summary>This process's rank and the number of ranks, or null when it was not launched as one rank of two or more.</summary>
    public static (int Rank, int Size)? Detect() => Detect(Environment.GetEnvironmentVariable);

    /// <summary>True when this process is a rank other than 0 of an MPI launch: it must not print results or write files.</summary>
    public static bool IsWorker => Detect() is { Rank: > 0 };

    /// <summary><see cref="Detect()"/> over any variable source (for tests).</summary>
    internal static (int Rank, int Size)? Detect(Func<string, string?> variable)
    {
        foreach (var (rankName, sizeName) in new[] { ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"), ("PMI_RANK", "PMI_SIZE") })
        {
            if (!int.TryParse(variable(sizeName), out int size) || !int.TryParse(variable(rankName), out int rank)) continue;
            if (size < 2) return null;
            if (rank < 0 || rank >= size)
                throw new InvalidOperationException($"{rankName}={rank} is outside 0..{size - 1} ({sizeName}={size}): the MPI launcher's environment is inconsistent.");
            return (rank, size);
        }
        return null;
    }
}
