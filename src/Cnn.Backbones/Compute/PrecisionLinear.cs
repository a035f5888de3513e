using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Compute;

/// <summary>
/// A linear layer equal to <c>torch.nn.Linear</c> (keys <c>weight</c> [out, in] and <c>bias</c>; the same default
/// initialisation) that follows <see cref="MixedPrecision"/>: inside a bfloat16 or float16 scope it multiplies in that type and
/// returns that type. Create it with <see cref="Ops.Linear"/>.
/// </summary>
public sealed class PrecisionLinear : nn.Module<Tensor, Tensor>
{
    private Parameter _weight = null!;
    private Parameter? _bias;

    internal PrecisionLinear(long inFeatures, long outFeatures, bool bias, Device? device) : base("Linear")
    {
        in_features = inFeatures;
        out_features = outFeatures;
        weight = nn.Parameter(empty([outFeatures, inFeatures], device: device));
        if (bias) this.bias = nn.Parameter(empty(outFeatures, device: device));
        Initialization.ResetLikeTorch(weight, this.bias);
    }

    /// <summary>The weight, [out, in], float32 (the master copy under mixed precision).</summary>
    public Parameter weight
    {
        get => _weight;
        private set
        {
            _weight = value;
            ConditionallyRegisterParameter(nameof(weight), value);
        }
    }

    /// <summary>The bias, [out], or null.</summary>
    public Parameter? bias
    {
        get => _bias;
        private set
        {
            _bias = value;
            ConditionallyRegisterParameter(nameof(bias), value);
        }
    }

    /// <summary>Input features.</summary>
    public long in_features { get; }

    /// <summary>Output features.</summary>
    public long out_features { get; }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        if (MixedPrecision.ComputeTypeFor(input) is not { } type)
            return nn.functional.linear(input, weight, bias);
        using var scope = NewDisposeScope();
        var output = nn.functional.linear(input.to(type), weight.to(type), bias?.to(type));
        return output.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _weight.Dispose();
            _bias?.Dispose();
        }
        base.Dispose(disposing);
    }
}
