using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Compute;

/// <summary>
/// A linear layer equal to <c>torch.nn.Linear</c> (keys <c>weight</c> [out, in] and <c>bias</c>; the same default
/// initialisation) that follows <see cref="MixedPrecision"/>: inside a bfloat16 or float16 scope it multiplies in that type and
/// returns that type. Create it with <see cref="Ops.Linear"/>.
/// </summary>
internal sealed class PrecisionLinear : PrecisionLayer
{
    internal PrecisionLinear(long inFeatures, long outFeatures, bool bias, Device? device) : base("Linear")
    {
        in_features = inFeatures;
        out_features = outFeatures;
        weight = nn.Parameter(empty([outFeatures, inFeatures], device: device));
        if (bias) this.bias = nn.Parameter(empty(outFeatures, device: device));
        Initialization.ResetLikeTorch(weight, this.bias);
    }

    /// <summary>Input features.</summary>
    public long in_features { get; }

    /// <summary>Output features.</summary>
    public long out_features { get; }

    /// <inheritdoc />
    protected override Tensor Apply(Tensor input, Tensor weight, Tensor? bias) => nn.functional.linear(input, weight, bias);
}
