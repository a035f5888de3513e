using static Cnn.MLNet.Distributed.OpenMpiNative;

namespace Cnn.MLNet.Distributed;

/// <summary>
/// MPI_COMM_WORLD of this process, initialised once (<c>MPI_Init_thread</c>, serialized) the first time training asks for it under
/// <c>mpirun</c>, finalised when the process exits. Errors return instead of aborting, and become <see cref="MpiException"/>.
/// </summary>
internal sealed class MpiCommunicator : ICommunicator
{
    private static readonly Lock Gate = new();
    private static MpiCommunicator? s_world;
    private readonly Handles _handles;
    private int _busy;

    private MpiCommunicator(Handles handles, int rank, int size)
    {
        _handles = handles;
        Rank = rank;
        Size = size;
    }

    /// <inheritdoc/>
    public int Rank { get; }

    /// <inheritdoc/>
    public int Size { get; }

    /// <summary>The world of this process: null when it was not launched by mpirun as one of two or more ranks (MPI is then never loaded).</summary>
    /// <exception cref="DllNotFoundException">Launched by mpirun, but Open MPI's library is missing.</exception>
    /// <exception cref="MpiException">MPI failed to start.</exception>
    public static MpiCommunicator? World
    {
        get
        {
            if (MpiLaunch.Detect() is null) return null;
            lock (Gate) return s_world ??= Start();
        }
    }

    private static MpiCommunicator Start()
    {
        var handles = Load();
        Check(Initialized(out int initialized), "MPI_Initialized");
        if (initialized == 0)
        {
            Check(InitThread(0, 0, ThreadSerialized, out int provided), "MPI_Init_thread");
            if (provided < ThreadSerialized)
                throw new MpiException($"This MPI library provides thread level {provided}, below MPI_THREAD_SERIALIZED: rebuild Open MPI with thread support.");
        }
        Check(CommSetErrhandler(handles.CommWorld, handles.ErrorsReturn), "MPI_Comm_set_errhandler");
        Check(CommRank(handles.CommWorld, out int rank), "MPI_Comm_rank");
        Check(CommSize(handles.CommWorld, out int size), "MPI_Comm_size");
        var world = new MpiCommunicator(handles, rank, size);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => world.Shutdown();
        return world;
    }

    /// <inheritdoc/>
    public unsafe void AllreduceSum(Span<float> values)
    {
        int n = values.Length;
        fixed (float* p = values) Collective((nint)p, buffer => Allreduce(InPlace, buffer, n, _handles.Float, _handles.Sum, _handles.CommWorld), "MPI_Allreduce");
    }

    /// <inheritdoc/>
    public unsafe void AllreduceSum(Span<double> values)
    {
        int n = values.Length;
        fixed (double* p = values) Collective((nint)p, buffer => Allreduce(InPlace, buffer, n, _handles.Double, _handles.Sum, _handles.CommWorld), "MPI_Allreduce");
    }

    /// <inheritdoc/>
    public unsafe void Broadcast(Span<byte> values)
    {
        int n = values.Length;
        fixed (byte* p = values) Collective((nint)p, buffer => Bcast(buffer, n, _handles.Byte, 0, _handles.CommWorld), "MPI_Bcast");
    }

    /// <inheritdoc/>
    public void Barrier() => Collective(0, _ => OpenMpiNative.Barrier(_handles.CommWorld), "MPI_Barrier");

    /// <inheritdoc/>
    public void Abort(int code)
    {
        OpenMpiNative.Abort(_handles.CommWorld, code);
        Environment.Exit(code); // MPI_Abort does not return; should it, the process still ends
    }

    private void Collective(nint buffer, Func<nint, int> call, string name)
    {
        Interlocked.Exchange(ref _busy, 1);
        try
        {
            Check(call(buffer), name);
        }
        finally
        {
            Interlocked.Exchange(ref _busy, 0);
        }
    }

    /// <summary>MPI_Finalize at exit, unless a collective is still running (the process is being killed after a rank failed).</summary>
    private void Shutdown()
    {
        if (Volatile.Read(ref _busy) != 0) return;
        if (Finalized(out int done) == Success && done == 0) OpenMpiNative.Finalize();
    }

    private static void Check(int code, string call)
    {
        if (code != Success) throw new MpiException($"{call} failed: {Describe(code)}. Another rank has probably failed; see its error above.");
    }
}

/// <summary>An MPI call failed (typically because another rank died).</summary>
public sealed class MpiException(string message) : Exception(message);
