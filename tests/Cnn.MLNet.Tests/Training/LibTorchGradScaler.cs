using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Cnn.MLNet.Tests.Training;

/// <summary>
/// The two kernels PyTorch's <c>GradScaler</c> runs, called in the libtorch that TorchSharp loads (2.10, which has their CPU
/// versions; Debian's PyTorch 1.13 has them for CUDA only): <c>_amp_foreach_non_finite_check_and_unscale_</c> (<c>unscale_</c>)
/// and <c>_amp_update_scale_</c> (<c>update</c>). TorchSharp does not bind them, so they are called through the dispatcher's C++
/// entry points: a TorchSharp handle is an <c>at::Tensor*</c>, which is what an <c>at::Tensor&amp;</c> argument passes, and a
/// <c>c10::ArrayRef&lt;at::Tensor&gt;</c> (pointer and length, passed in two registers on x86-64 Linux) points at an array of
/// <c>at::Tensor</c>s, each one <c>TensorImpl</c> pointer, borrowed here without touching reference counts.
/// </summary>
internal static class LibTorchGradScaler
{
    private const string UpdateScaleSymbol = "_ZN2at4_ops18_amp_update_scale_4callERNS_6TensorES3_RKS2_ddl";
    private const string UnscaleSymbol = "_ZN2at4_ops42_amp_foreach_non_finite_check_and_unscale_4callEN3c108ArrayRefINS_6TensorEEERS4_RKS4_";

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr UpdateScale(IntPtr scale, IntPtr growthTracker, IntPtr foundInf, double growthFactor, double backoffFactor, long growthInterval);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void NonFiniteCheckAndUnscale(IntPtr tensors, nuint count, IntPtr foundInf, IntPtr inverseScale);

    private static readonly Lazy<(UpdateScale Update, NonFiniteCheckAndUnscale Unscale)> Kernels = new(() =>
    {
        // Already loaded by TorchSharp: the loader finds it by its soname.
        var library = NativeLibrary.Load("libtorch_cpu.so");
        return (Marshal.GetDelegateForFunctionPointer<UpdateScale>(NativeLibrary.GetExport(library, UpdateScaleSymbol)),
                Marshal.GetDelegateForFunctionPointer<NonFiniteCheckAndUnscale>(NativeLibrary.GetExport(library, UnscaleSymbol)));
    });

    /// <summary>
    /// <c>torch._amp_foreach_non_finite_check_and_unscale_(grads, found_inf, inv_scale)</c>: sets <paramref name="foundInf"/>
    /// (float32, one element) to 1 when any gradient holds an infinity or NaN, and multiplies each by <paramref name="inverseScale"/>.
    /// </summary>
    public static void Unscale(IReadOnlyList<Tensor> gradients, Tensor foundInf, Tensor inverseScale)
    {
        var impls = gradients.Select(g => Marshal.ReadIntPtr(g.Handle)).ToArray();
        var pinned = GCHandle.Alloc(impls, GCHandleType.Pinned);
        try
        {
            Kernels.Value.Unscale(pinned.AddrOfPinnedObject(), (nuint)impls.Length, foundInf.Handle, inverseScale.Handle);
        }
        finally
        {
            pinned.Free();
        }
        GC.KeepAlive(gradients);
    }

    /// <summary>
    /// <c>torch._amp_update_scale_(scale, growth_tracker, found_inf, growth_factor, backoff_factor, growth_interval)</c> on
    /// <paramref name="scale"/> (float32) and <paramref name="growthTracker"/> (int32), in place.
    /// </summary>
    public static void Update(Tensor scale, Tensor growthTracker, Tensor foundInf, double growthFactor, double backoffFactor, long growthInterval)
    {
        Kernels.Value.Update(scale.Handle, growthTracker.Handle, foundInf.Handle, growthFactor, backoffFactor, growthInterval);
        GC.KeepAlive(scale);
        GC.KeepAlive(growthTracker);
        GC.KeepAlive(foundInf);
    }
}
