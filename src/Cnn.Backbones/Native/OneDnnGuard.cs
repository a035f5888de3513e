using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Backbones.Native;

/// <summary>
/// Keeps libtorch's oneDNN on its AVX kernels where its newer kernels fail: on x86 processors that offer AVX-512 but hide their
/// cache geometry (CPUID leaf 4 and leaf 0x8000001D describe no cache, as some virtual machines report). oneDNN sizes its
/// blocking from the caches, and there libtorch 2.10's oneDNN (measured on an AMD EPYC virtual machine with AVX-512 BF16) gets
/// float32 convolutions wrong with its AVX-512 kernels, deterministically and at every AVX-512 level (a 24→24 3×3 convolution
/// 20–37% away from float64, efficientnet_v2_s NaN in training, googlenet's training-mode outputs 28% off), and its AVX2
/// brgemm kernels divide by zero (SIGFPE, the process dies) planning a 1×1 strided convolution's backward pass (seresnet50).
/// Its AVX kernels are exact there (1e-6 of float64) at about 0.7 of the AVX2 speed; PyTorch 1.13's older oneDNN is exact on the
/// same machine. The guard sets <c>ONEDNN_MAX_CPU_ISA=AVX</c> for the process before libtorch starts, unless the variable is
/// already set (a user's own choice wins). oneDNN then has no native bfloat16 either, which
/// <see cref="Compute.CpuFeatures.HasNativeBFloat16"/> reports.
/// </summary>
internal static class OneDnnGuard
{
    /// <summary>oneDNN's variable that caps the instruction set its kernels use.</summary>
    public const string IsaVariable = "ONEDNN_MAX_CPU_ISA";

    /// <summary>The instruction set oneDNN is capped at in this process (by the environment or by the guard), or null.</summary>
    public static string? CappedIsa { get; private set; }

    /// <summary>What the guard found and did, for diagnostics.</summary>
    public static string Status { get; private set; } = "not run";

    /// <summary>Sets the cap when the processor needs it; runs once, before libtorch is loaded.</summary>
    public static void Apply()
    {
        if (Environment.GetEnvironmentVariable(IsaVariable) is { } set)
        {
            CappedIsa = set;
            Status = $"{IsaVariable}={set} set by the environment";
            return;
        }
        if (!Avx512F.IsSupported || CacheGeometryReported())
        {
            Status = "not needed";
            return;
        }
        if (!OperatingSystem.IsLinux())
        {
            Status = $"needed but not applied on this operating system: set {IsaVariable}=AVX before starting the process";
            return;
        }
        // Only libtorch's getenv reads it: other programs this process starts (PyTorch in the benchmarks, child cnn processes that
        // decide for themselves) keep their own environment, since .NET starts them with its managed copy.
        _ = setenv(IsaVariable, "AVX", 1);
        CappedIsa = "AVX";
        Status = $"{IsaVariable}=AVX: this processor offers AVX-512 but hides its cache geometry, where oneDNN's newer kernels compute wrong results or crash";
    }

    // True when CPUID's deterministic cache leaves describe at least one cache (Intel's leaf 4, AMD's 0x8000001D).
    private static bool CacheGeometryReported()
    {
        if (!X86Base.IsSupported) return true;
        int maxLeaf = X86Base.CpuId(0, 0).Eax, maxExtended = X86Base.CpuId(unchecked((int)0x80000000), 0).Eax;
        bool intel = maxLeaf >= 4 && (X86Base.CpuId(4, 0).Eax & 0x1F) != 0;
        bool amd = unchecked((uint)maxExtended) >= 0x8000001D && (X86Base.CpuId(unchecked((int)0x8000001D), 0).Eax & 0x1F) != 0;
        return intel || amd;
    }

    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int setenv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);
}
