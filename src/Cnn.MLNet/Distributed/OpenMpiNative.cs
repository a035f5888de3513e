using System.Runtime.InteropServices;

namespace Cnn.MLNet.Distributed;

/// <summary>
/// The few MPI calls data-parallel training needs, bound to Open MPI's <c>libmpi.so.40</c> (Debian's <c>libopenmpi3</c>). Open MPI's
/// predefined handles (<c>MPI_COMM_WORLD</c>, <c>MPI_FLOAT</c>, <c>MPI_SUM</c>, …) are not integers but the addresses of global objects
/// (<c>ompi_mpi_comm_world</c>, …), resolved here with <see cref="NativeLibrary.GetExport"/>. The library is opened with
/// <c>RTLD_GLOBAL</c> first, because Open MPI's plug-ins (its <c>mca_*.so</c> components) resolve their symbols from it.
/// </summary>
internal static unsafe partial class OpenMpiNative
{
    public const string Library = "libmpi.so.40";

    /// <summary>MPI_THREAD_SERIALIZED: any thread may call MPI, one at a time (the exit handler runs on another thread than training).</summary>
    public const int ThreadSerialized = 2;

    public const int Success = 0;

    /// <summary>Open MPI's MPI_IN_PLACE.</summary>
    public static readonly nint InPlace = 1;

    private const int RtldNow = 2, RtldGlobal = 0x100;

    [LibraryImport("libc", EntryPoint = "dlopen", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint DlOpen(string file, int mode);

    [LibraryImport(Library, EntryPoint = "MPI_Init_thread")]
    public static partial int InitThread(nint argc, nint argv, int required, out int provided);

    [LibraryImport(Library, EntryPoint = "MPI_Initialized")]
    public static partial int Initialized(out int flag);

    [LibraryImport(Library, EntryPoint = "MPI_Finalized")]
    public static partial int Finalized(out int flag);

    [LibraryImport(Library, EntryPoint = "MPI_Finalize")]
    public static partial int Finalize();

    [LibraryImport(Library, EntryPoint = "MPI_Comm_rank")]
    public static partial int CommRank(nint comm, out int rank);

    [LibraryImport(Library, EntryPoint = "MPI_Comm_size")]
    public static partial int CommSize(nint comm, out int size);

    [LibraryImport(Library, EntryPoint = "MPI_Comm_set_errhandler")]
    public static partial int CommSetErrhandler(nint comm, nint handler);

    [LibraryImport(Library, EntryPoint = "MPI_Allreduce")]
    public static partial int Allreduce(nint send, nint receive, int count, nint datatype, nint op, nint comm);

    [LibraryImport(Library, EntryPoint = "MPI_Bcast")]
    public static partial int Bcast(nint buffer, int count, nint datatype, int root, nint comm);

    [LibraryImport(Library, EntryPoint = "MPI_Barrier")]
    public static partial int Barrier(nint comm);

    [LibraryImport(Library, EntryPoint = "MPI_Abort")]
    public static partial int Abort(nint comm, int code);

    [LibraryImport(Library, EntryPoint = "MPI_Error_string")]
    private static partial int ErrorString(int code, byte* text, out int length);

    /// <summary>The predefined handles, resolved from the library once it is loaded.</summary>
    public sealed record Handles(nint CommWorld, nint Float, nint Double, nint Byte, nint Sum, nint ErrorsReturn);

    /// <summary>Loads <c>libmpi.so.40</c> globally and resolves the handles.</summary>
    /// <exception cref="DllNotFoundException">Open MPI is not installed.</exception>
    public static Handles Load()
    {
        nint library = DlOpen(Library, RtldNow | RtldGlobal);
        if (library == 0)
            throw new DllNotFoundException($"This process was started by mpirun but {Library} (Open MPI 4) cannot be loaded: install openmpi-bin and libopenmpi-dev " +
                                           "(Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev), or run without mpirun.");
        nint Symbol(string name) => NativeLibrary.GetExport(library, name);
        return new Handles(Symbol("ompi_mpi_comm_world"), Symbol("ompi_mpi_float"), Symbol("ompi_mpi_double"), Symbol("ompi_mpi_byte"),
            Symbol("ompi_mpi_op_sum"), Symbol("ompi_mpi_errors_return"));
    }

    /// <summary>MPI's text for an error code.</summary>
    public static string Describe(int code)
    {
        var text = stackalloc byte[512]; // MPI_MAX_ERROR_STRING is 256 in Open MPI
        return ErrorString(code, text, out int length) == Success ? System.Text.Encoding.UTF8.GetString(text, Math.Clamp(length, 0, 511)) : $"MPI error {code}";
    }
}
