using System.Runtime.InteropServices;

namespace Cnn.Backbones.Native;

/// <summary>
/// Keeps the memory a training step frees in glibc's heap for the next step, instead of handing it back to the kernel and
/// faulting it in again page by page.
/// </summary>
/// <remarks>
/// <para>glibc serves blocks below a threshold from its heap and maps larger ones; it returns free memory at the top of the heap
/// to the kernel once there is more than a second threshold of it. By default both adapt: they rise with the largest mapped
/// block the process has freed, up to 32 MiB and 64 MiB. During training every step frees and allocates its activations and
/// gradients again, and how much of that glibc returns between steps depended on the order in which blocks happened to be
/// freed. Measured (2-core AMD EPYC, `benchmarks/Cnn.Benchmarks`): CnnTrainer.Fit on resnet18 at 28 px, batch 128, took 15,000
/// to 20,000 page faults per batch, epoch after epoch (60–80 MB of fresh memory a step, 0.6–0.8 s of system time an epoch), and
/// a bare loop over the same model took 5 once it had settled; resnet50 at 112 px took 30,000–38,000 a step.</para>
/// <para>After the first step of a training run (<see cref="KeepStepMemory"/>), when the step's blocks and the optimizer's state
/// are laid out, the thresholds are set to 32 MiB (the adaptive one's ceiling: larger blocks are still mapped and unmapped) and
/// 256 MiB, with <c>mallopt</c>. The steps then took about 140 page faults each, and peak memory stayed within the run-to-run
/// spread of glibc's defaults. Setting the same values when the process starts instead added 5–12% to resnet50's peak memory at
/// 112 px. When the run ends, <see cref="ReleaseFreed"/> hands back to the kernel what the heap holds free
/// (<c>malloc_trim</c>).</para>
/// <para>It runs on Linux only, and not where the environment sets glibc's malloc variables (<c>MALLOC_MMAP_THRESHOLD_</c>,
/// <c>MALLOC_TRIM_THRESHOLD_</c>, <c>MALLOC_TOP_PAD_</c>, <c>MALLOC_MMAP_MAX_</c>, or <c>glibc.malloc</c> tunables in
/// <c>GLIBC_TUNABLES</c>): a user's own choice wins. <c>CNN_MLNET_NATIVE_HEAP=default</c> leaves glibc's defaults alone.</para>
/// </remarks>
internal static class NativeHeap
{
    /// <summary>The variable that leaves glibc's allocator at its defaults when set to <c>default</c>.</summary>
    public const string Variable = "CNN_MLNET_NATIVE_HEAP";

    /// <summary>Blocks from this size up are mapped and unmapped: the ceiling of glibc's adaptive threshold on 64-bit systems.</summary>
    public const int MapThresholdBytes = 32 * 1024 * 1024;

    /// <summary>Free memory at the top of the heap beyond this is handed back to the kernel.</summary>
    public const int TrimThresholdBytes = 256 * 1024 * 1024;

    // mallopt's parameters (glibc's malloc.h).
    private const int TrimThresholdParameter = -1;
    private const int MapThresholdParameter = -3;

    private static readonly string[] MallocVariables =
        ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_"];

    private static bool _allowed;
    private static int _kept;

    /// <summary>What was decided and done, for diagnostics (<see cref="TorchRuntime.NativeHeapStatus"/>).</summary>
    public static string Status { get; private set; } = "not run";

    /// <summary>Decides, once, whether <see cref="KeepStepMemory"/> may set the thresholds.</summary>
    public static void Apply()
    {
        string? refusal = Refusal(OperatingSystem.IsLinux(), Environment.GetEnvironmentVariable);
        _allowed = refusal is null;
        Status = refusal ?? "glibc's defaults until the first training step";
    }

    /// <summary>Why the thresholds are left alone on this system with this environment, or null where they may be set.</summary>
    /// <param name="linux">Whether the system is Linux.</param>
    /// <param name="environment">The process's environment variables by name.</param>
    internal static string? Refusal(bool linux, Func<string, string?> environment) =>
        !linux ? "not needed on this operating system"
        : environment(Variable) is { } own && own.Equals("default", StringComparison.OrdinalIgnoreCase) ? $"glibc's defaults kept: {Variable}=default"
        : MallocVariables.FirstOrDefault(v => environment(v) is not null) is { } set ? $"left to the environment: {set} is set"
        : environment("GLIBC_TUNABLES") is { } tunables && tunables.Contains("glibc.malloc.", StringComparison.Ordinal)
            ? "left to the environment: GLIBC_TUNABLES sets glibc.malloc tunables"
        : null;

    /// <summary>
    /// Sets glibc's thresholds (<see cref="MapThresholdBytes"/>, <see cref="TrimThresholdBytes"/>) once per process, where
    /// <see cref="Apply"/> allowed it. Training loops call it when a step is done; later calls do nothing.
    /// </summary>
    public static void KeepStepMemory()
    {
        if (!_allowed || Interlocked.Exchange(ref _kept, 1) == 1) return;
        try
        {
            bool set = mallopt(MapThresholdParameter, MapThresholdBytes) == 1 && mallopt(TrimThresholdParameter, TrimThresholdBytes) == 1;
            Status = set
                ? $"glibc's heap keeps up to {TrimThresholdBytes >> 20} MiB free for the next training step; blocks of {MapThresholdBytes >> 20} MiB and more are mapped"
                : "mallopt refused the thresholds; glibc's defaults kept";
            _allowed = set;
        }
        catch (Exception ex) when (ex is EntryPointNotFoundException or DllNotFoundException)
        {
            Status = "not glibc (no mallopt); the C library's defaults kept";
            _allowed = false;
        }
    }

    /// <summary>Hands the heap's free memory back to the kernel (<c>malloc_trim</c>) when <see cref="KeepStepMemory"/> set the thresholds; the end of a training run calls it.</summary>
    public static void ReleaseFreed()
    {
        if (!_allowed || Volatile.Read(ref _kept) == 0) return;
        try
        {
            _ = malloc_trim(0);
        }
        catch (Exception ex) when (ex is EntryPointNotFoundException or DllNotFoundException)
        {
            _allowed = false;
        }
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int mallopt(int parameter, int value);

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int malloc_trim(nuint pad);
}
