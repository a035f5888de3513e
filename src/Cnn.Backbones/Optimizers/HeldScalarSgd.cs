using Cnn.Backbones.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Optimizers;

/// <summary>
/// <c>torch.optim.SGD</c>: TorchSharp's <see cref="SGD"/> (options, parameter groups, state and its saved form), whose step holds
/// its scalars for each native call, where TorchSharp's makes temporary ones per parameter (see <see cref="Scalars"/>).
/// </summary>
/// <remarks>
/// The update is PyTorch's: <c>g ← −g</c> when maximizing, <c>g ← g + λp</c>; with momentum μ, <c>b ← g</c> on the first step and <c>b ← μb + (1 − dampening)g</c>
/// after, <c>g ← g + μb</c> (Nesterov) or <c>g ← b</c>; then <c>p ← p − lr·g</c>. (TorchSharp's own step maximizes by adding
/// <c>lr·g</c> at the end, which turns the weight decay's sign; PyTorch negates the gradient first, as here.)
/// </remarks>
internal sealed class HeldScalarSgd : SGD
{
    /// <summary>SGD over parameter groups, each with its own options; the arguments are the defaults for options left unset.</summary>
    public HeldScalarSgd(IEnumerable<ParamGroup> groups, double lr, double momentum = 0, double dampening = 0, double weightDecay = 0,
        bool nesterov = false, bool maximize = false)
        : base(groups, lr, momentum, dampening, weightDecay, nesterov, maximize) { }

    /// <summary>SGD over one group of parameters.</summary>
    public HeldScalarSgd(IEnumerable<Parameter> parameters, double lr, double momentum = 0, double dampening = 0, double weightDecay = 0,
        bool nesterov = false, bool maximize = false)
        : base(parameters, lr, momentum, dampening, weightDecay, nesterov, maximize) { }

    /// <inheritdoc />
    public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
    {
        var options = group.Options;
        double momentum = options.momentum!.Value, weightDecay = options.weight_decay!.Value, lr = options.LearningRate!.Value;
        bool nesterov = options.nesterov!.Value, maximize = options.maximize!.Value;
        using var decay = Scalars.Held(weightDecay);
        using var momentumHeld = Scalars.Held(momentum);
        using var gradWeight = Scalars.Held(1 - options.dampening!.Value);
        using var rate = Scalars.Held(-lr);
        foreach (var parameter in group.Parameters)
        {
            var grad = parameter.grad;
            if (grad is null) continue;
            if (maximize) grad = grad.neg();
            if (weightDecay != 0) grad = grad.add(parameter, decay);
            if (momentum != 0)
            {
                var state = (State)_state[parameter.Handle];
                if (state.momentum_buffer is null) state.momentum_buffer = grad.clone().detach().DetachFromDisposeScope();
                else state.momentum_buffer.mul_(momentumHeld).add_(grad, gradWeight);
                grad = nesterov ? grad.add(state.momentum_buffer, momentumHeld) : state.momentum_buffer;
            }
            parameter.add_(grad, rate);
        }
    }, closure);
}
