using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Cnn.Backbones.Compute;

/// <summary>
/// What <see cref="PrecisionConv2d"/> and <see cref="PrecisionLinear"/> share: a float32 <c>weight</c> and an optional
/// <c>bias</c>, registered under torch's keys (so <c>Module.to()</c>, <c>state_dict</c> and <c>load_state_dict</c> see them),
/// and <see cref="MixedPrecision"/>'s rule: outside a reduced-precision scope the layer computes on its own parameters; inside
/// one it casts input, weight and bias to the scope's type and returns that type.
/// </summary>
internal abstract class PrecisionLayer : nn.Module<Tensor, Tensor>
{
    // Module.to() finds parameter fields by reflection (private fields of a base class are invisible to it, so these are
    // private protected) and re-registers them under their ComponentName: without it, the field name ("_weight") would become a
    // second parameter beside the stale "weight".
    [ComponentName(Name = "weight")]
    private protected Parameter _weight = null!;

    [ComponentName(Name = "bias")]
    private protected Parameter? _bias;

    /// <summary>Creates the layer; the derived constructor assigns <see cref="weight"/> and <see cref="bias"/>.</summary>
    /// <param name="torchName">The torch module name ("Conv2d", "Linear"), used in messages and exports.</param>
    private protected PrecisionLayer(string torchName) : base(torchName) { }

    /// <summary>The weight, float32 (the master copy under mixed precision).</summary>
    public Parameter weight
    {
        get => _weight;
        protected set
        {
            _weight = value;
            ConditionallyRegisterParameter(nameof(weight), value);
        }
    }

    /// <summary>The bias, or null.</summary>
    public Parameter? bias
    {
        get => _bias;
        protected set
        {
            _bias = value;
            ConditionallyRegisterParameter(nameof(bias), value);
        }
    }

    /// <summary>The layer's operation on tensors that share one type.</summary>
    protected abstract Tensor Apply(Tensor input, Tensor weight, Tensor? bias);

    /// <summary>The float32 weight and bias this forward pass computes with: <see cref="weight"/> and <see cref="bias"/> unless a derived layer substitutes its own.</summary>
    private protected virtual (Tensor Weight, Tensor? Bias) EffectiveParameters() => (weight, bias);

    /// <inheritdoc />
    public sealed override Tensor forward(Tensor input)
    {
        var (w, b) = EffectiveParameters();
        if (MixedPrecision.ComputeTypeFor(input) is not { } type)
            return Apply(input, w, b);
        using var scope = NewDisposeScope();
        var clock = MixedPrecision.CastClock;
        clock?.Start();
        Tensor reducedInput = input.to(type), reducedWeight = w.to(type);
        var reducedBias = b?.to(type);
        clock?.Stop();
        var output = Apply(reducedInput, reducedWeight, reducedBias);
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
