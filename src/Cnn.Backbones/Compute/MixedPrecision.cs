using System.Diagnostics;
using static TorchSharp.torch;

namespace Cnn.Backbones.Compute;

/// <summary>
/// The precision policy of our convolution and linear layers, entered for a region of code as PyTorch's <c>torch.autocast</c> is:
/// inside <see cref="Enter"/> with <see cref="ScalarType.BFloat16"/> (or <see cref="ScalarType.Float16"/>), every
/// <see cref="PrecisionConv2d"/> and <see cref="PrecisionLinear"/> casts its float32 input, weight and bias to that type and
/// computes and returns in it, as autocast's lower-precision ops do. Weights stay float32: they are the master copy the optimizer
/// updates, and gradients flow back through the cast into float32. BatchNorm and LayerNorm take the reduced activations with
/// their float32 weights and running statistics and compute in float32 internally (libtorch's mixed-type CPU kernels), as under
/// autocast; storing the activations between layers in 16 bits is most of the speed-up. Whoever leaves the scope with a result
/// casts it back (<see cref="Models.Backbone"/> returns float32), so losses, softmax and the optimizer run in float32.
/// TorchSharp has no autocast, so the policy lives in the layers we own. The scope is per thread, like PyTorch's.
/// </summary>
internal static class MixedPrecision
{
    [ThreadStatic] private static ScalarType? _computeType;

    /// <summary>
    /// A profiling hook for benchmarks: while set on a thread, <see cref="PrecisionLayer"/> runs its casts (input, weight and
    /// bias to the reduced type) inside this clock, so it accumulates the time spent casting. Null (off, one null check per
    /// layer) unless a benchmark sets it.
    /// </summary>
    [ThreadStatic] internal static Stopwatch? CastClock;

    /// <summary>The reduced type convolutions and linear layers compute in on this thread, or null for float32 throughout.</summary>
    public static ScalarType? ComputeType => _computeType;

    /// <summary>Computes convolutions and linear layers in <paramref name="computeType"/> until the returned scope is disposed.</summary>
    /// <param name="computeType"><see cref="ScalarType.BFloat16"/>, <see cref="ScalarType.Float16"/>, or null (or float32) for float32.</param>
    /// <returns>The scope; disposing it restores the policy that was in force before.</returns>
    public static Scope Enter(ScalarType? computeType)
    {
        if (computeType is not (null or ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16))
            throw new ArgumentException($"Mixed precision computes in bfloat16 or float16 (or float32 for none); {computeType} is not a compute type.", nameof(computeType));
        var previous = _computeType;
        _computeType = computeType == ScalarType.Float32 ? null : computeType;
        return new Scope(previous);
    }

    /// <summary>An entered precision policy; disposing it restores the previous one.</summary>
    public readonly struct Scope : IDisposable
    {
        private readonly ScalarType? _previous;

        internal Scope(ScalarType? previous) => _previous = previous;

        /// <summary>Restores the policy in force before <see cref="Enter"/>.</summary>
        public void Dispose() => _computeType = _previous;
    }

    /// <summary>
    /// The type a layer computes <paramref name="input"/> in: the scope's reduced type for a float32 (or already reduced) input,
    /// else null (compute as given; integer or float64 inputs are left alone).
    /// </summary>
    internal static ScalarType? ComputeTypeFor(Tensor input) =>
        _computeType is { } type && (input.dtype == ScalarType.Float32 || input.dtype == type) ? type : null;
}
