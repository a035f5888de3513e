using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Native;

/// <summary>
/// Tensor arithmetic with numbers, holding the TorchSharp <see cref="Scalar"/> for the length of the native call.
/// </summary>
/// <remarks>
/// TorchSharp 0.107 passes a scalar's native handle to libtorch and keeps no reference to the managed object meanwhile, so a
/// temporary one (<c>x * 0.5</c>; <c>a + b</c>, which is <c>a.add(b, 1)</c>) can be finalized by a garbage collection another
/// thread starts, freeing the c10::Scalar while libtorch still reads it: "Unknown scalar type" at random, or a wrong value.
/// Every method here keeps its scalar reachable until the call returns (<see cref="One"/> and <see cref="Zero"/> for the
/// process's life). The build's analyzer (CNN0001, <c>src/Cnn.Analyzers</c>) rejects the temporary forms.
/// </remarks>
internal static class Scalars
{
    /// <summary>The scalar 1, never collected: the <c>alpha</c> of a plain addition.</summary>
    public static readonly Scalar One = 1.ToScalar();

    /// <summary>The scalar 0, never collected.</summary>
    public static readonly Scalar Zero = 0.ToScalar();

    /// <summary>Runs <paramref name="call"/> with <paramref name="value"/> as a scalar held until it returns.</summary>
    private static Tensor With(double value, Func<Scalar, Tensor> call)
    {
        using var held = value.ToScalar();
        return call(held);
    }

    /// <summary>Runs <paramref name="call"/> with the integer <paramref name="value"/> as a scalar held until it returns.</summary>
    private static Tensor With(long value, Func<Scalar, Tensor> call)
    {
        using var held = value.ToScalar();
        return call(held);
    }

    /// <summary>A scalar for one or more calls; dispose it after the last (<c>using var s = Scalars.Held(x);</c>).</summary>
    public static Scalar Held(double value) => value.ToScalar();

    /// <summary><c>x + y</c>.</summary>
    public static Tensor Plus(this Tensor x, Tensor y) => x.add(y, One);

    /// <summary><c>x + value</c>.</summary>
    public static Tensor Plus(this Tensor x, double value) => With(value, v => x.add(v, One));

    /// <summary><c>x + value</c> with an integer (keeps an integer tensor integral).</summary>
    public static Tensor Plus(this Tensor x, long value) => With(value, v => x.add(v, One));

    /// <summary><c>x · value</c>.</summary>
    public static Tensor Times(this Tensor x, double value) => With(value, v => x.mul(v));

    /// <summary><c>x · value</c> with an integer (keeps an integer tensor integral).</summary>
    public static Tensor Times(this Tensor x, long value) => With(value, v => x.mul(v));

    /// <summary><c>x / value</c> (true division).</summary>
    public static Tensor DividedBy(this Tensor x, double value) => With(value, v => x.div(v));

    /// <summary><c>x += y</c>, in place.</summary>
    public static Tensor PlusInPlace(this Tensor x, Tensor y) => x.add_(y, One);

    /// <summary><c>x += value</c>, in place.</summary>
    public static Tensor PlusInPlace(this Tensor x, double value) => With(value, v => x.add_(v, One));

    /// <summary><c>x *= value</c>, in place.</summary>
    public static Tensor TimesInPlace(this Tensor x, double value) => With(value, v => x.mul_(v));

    /// <summary><c>x /= value</c>, in place (true division).</summary>
    public static Tensor DivideInPlace(this Tensor x, double value) => With(value, v => x.div_(v));

    /// <summary><c>x.clamp_(min, max)</c>, in place.</summary>
    public static Tensor ClampInPlace(this Tensor x, double min, double max)
    {
        using var lo = min.ToScalar();
        using var hi = max.ToScalar();
        return x.clamp_(lo, hi);
    }

    /// <summary><c>torch.full(shape, value)</c> (float32 unless <paramref name="dtype"/> says otherwise).</summary>
    public static Tensor Filled(long[] shape, double value, ScalarType? dtype = null) => With(value, v => torch.full(shape, v, dtype));

    /// <summary><c>x &gt; value</c>, element-wise.</summary>
    public static Tensor GreaterThan(this Tensor x, double value) => With(value, v => x.gt(v));

    /// <summary><c>torch.arange(stop)</c>: 0, 1, …, stop − 1 (int64).</summary>
    public static Tensor Arange(long stop, Device? device = null) => With(stop, end => torch.arange(Zero, end, One, device: device));
}
