using static TorchSharp.torch;

namespace Cnn.Backbones.Compute;

/// <summary>
/// How a <see cref="Models.Backbone"/> computes: in float32 or under <see cref="MixedPrecision"/> with a reduced type, on
/// contiguous or channels-last (<see cref="MemoryFormat"/>) activations. Parameters stay float32 and contiguous either way, so
/// state dicts, checkpoints and exports do not change; what the backbone returns is float32 and contiguous.
/// </summary>
/// <param name="ReducedType">
/// <see cref="ScalarType.BFloat16"/> or <see cref="ScalarType.Float16"/> for mixed precision (convolutions and linear layers
/// compute in it), or null for float32 throughout.
/// </param>
/// <param name="ChannelsLast">Convert the input to channels-last, so the whole network runs on NHWC-strided activations.</param>
public sealed record ComputeSettings(ScalarType? ReducedType = null, bool ChannelsLast = false)
{
    /// <summary>Float32, contiguous: the reference computation every parity test runs.</summary>
    public static ComputeSettings Float32 { get; } = new();

    /// <summary>True for <see cref="Float32"/> (nothing to do around a forward pass).</summary>
    public bool IsFloat32Contiguous => ReducedType is null && !ChannelsLast;

    /// <summary>Throws unless <see cref="ReducedType"/> is null, bfloat16 or float16.</summary>
    /// <exception cref="ArgumentException">Another type.</exception>
    public void Validate()
    {
        if (ReducedType is not (null or ScalarType.BFloat16 or ScalarType.Float16))
            throw new ArgumentException($"Mixed precision reduces to bfloat16 or float16; {ReducedType} is not a reduced type.", nameof(ReducedType));
    }

    /// <summary>A short description, as logs and reports print it: <c>float32</c>, <c>bfloat16, channels-last</c>.</summary>
    public override string ToString() =>
        (ReducedType switch { ScalarType.BFloat16 => "bfloat16", ScalarType.Float16 => "float16", _ => "float32" }) + (ChannelsLast ? ", channels-last" : "");

    /// <summary>The network's input as these settings compute it (channels-last when asked); the caller disposes it.</summary>
    internal Tensor PrepareInput(Tensor x) => ChannelsLast ? MemoryFormat.ToChannelsLast(x) : x.alias();

    /// <summary>An output handed back to callers: float32 and contiguous (<paramref name="output"/> is disposed when replaced).</summary>
    internal static Tensor Finish(Tensor output)
    {
        if (output.dtype is ScalarType.BFloat16 or ScalarType.Float16)
        {
            using var reduced = output;
            output = reduced.to(ScalarType.Float32);
        }
        if (output.is_contiguous()) return output;
        using (output) return output.contiguous();
    }
}
