using System.Runtime.InteropServices;

namespace Cnn.Backbones.Compute;

/// <summary>
/// What the processor offers reduced-precision arithmetic, read once at run time. .NET's intrinsics do not expose AVX-512 BF16
/// or AMX, so on Linux the kernel's CPU flags (<c>/proc/cpuinfo</c>) are read; elsewhere none is assumed (Auto then stays
/// float32).
/// </summary>
public static class CpuFeatures
{
    private static readonly Lazy<IReadOnlySet<string>> Flags = new(ReadFlags);

    /// <summary>
    /// True when the CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX-BF16) and libtorch's oneDNN may use it, where oneDNN's
    /// bfloat16 kernels are fast; false when <c>ONEDNN_MAX_CPU_ISA</c> caps oneDNN below bfloat16 (as
    /// <see cref="Native.TorchRuntime.OneDnnStatus"/> reports, on processors whose AVX-512 kernels compute wrong results).
    /// </summary>
    public static bool HasNativeBFloat16 =>
        (Flags.Value.Contains("avx512_bf16") || Flags.Value.Contains("amx_bf16")) && !OneDnnCappedBelowBFloat16;

    // oneDNN's instruction-set caps that exclude its bfloat16 kernels.
    private static bool OneDnnCappedBelowBFloat16 =>
        Native.OneDnnGuard.CappedIsa?.ToUpperInvariant() is "SSE41" or "AVX" or "AVX2" or "AVX2_VNNI" or "AVX512_CORE" or "AVX512_CORE_VNNI";

    /// <summary>The native bfloat16 instruction sets found (<c>avx512_bf16</c>, <c>amx_bf16</c>), for logs; empty when none.</summary>
    public static IReadOnlyList<string> BFloat16InstructionSets =>
        new[] { "avx512_bf16", "amx_bf16" }.Where(Flags.Value.Contains).ToArray();

    private static IReadOnlySet<string> ReadFlags()
    {
        var flags = new HashSet<string>(StringComparer.Ordinal);
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux) || RuntimeInformation.ProcessArchitecture != Architecture.X64) return flags;
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
            {
                if (!line.StartsWith("flags", StringComparison.Ordinal)) continue;
                int colon = line.IndexOf(':');
                if (colon > 0) flags.UnionWith(line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries));
                break;
            }
        }
        catch (IOException)
        {
            // No readable cpuinfo (a sandbox): no native bfloat16 is assumed.
        }
        catch (UnauthorizedAccessException)
        {
        }
        return flags;
    }
}
