using Cnn.Backbones.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Optimizers;

/// <summary>
/// <c>torch.optim.AdamW</c>: TorchSharp's <see cref="AdamW"/> (options, parameter groups, state and its saved form), whose step
/// holds its scalars for each native call. TorchSharp's own step makes about seven temporary scalars per parameter per step,
/// each of which a garbage collection on another thread can free while libtorch reads it (see <see cref="Scalars"/>).
/// </summary>
/// <remarks>
/// The update is PyTorch's (<c>torch.optim.AdamW</c>, <c>amsgrad</c> and <c>maximize</c> included): decoupled decay
/// <c>p ← p(1 − lr·λ)</c>, moments <c>m ← β₁m + (1 − β₁)g</c>, <c>v ← β₂v + (1 − β₂)g²</c>, then
/// <c>p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)</c>. With λ = 0 it is Adam.
/// </remarks>
internal sealed class HeldScalarAdamW : AdamW
{
    /// <summary>AdamW over parameter groups, each with its own options; the arguments are the defaults for options left unset.</summary>
    public HeldScalarAdamW(IEnumerable<ParamGroup> groups, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
        double weightDecay = 0, bool amsgrad = false, bool maximize = false)
        : base(groups, lr, beta1, beta2, eps, weightDecay, amsgrad, maximize) { }

    /// <summary>AdamW over one group of parameters.</summary>
    public HeldScalarAdamW(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
        double weightDecay = 0, bool amsgrad = false, bool maximize = false)
        : base(parameters, lr, beta1, beta2, eps, weightDecay, amsgrad, maximize) { }

    /// <inheritdoc />
    public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
    {
        var options = (Options)group.Options;
        double beta1 = options.beta1!.Value, beta2 = options.beta2!.Value, lr = options.LearningRate!.Value;
        bool amsgrad = options.amsgrad!.Value, maximize = options.maximize!.Value;
        using var decay = Scalars.Held(1 - lr * options.weight_decay!.Value);
        using var beta1Held = Scalars.Held(beta1);
        using var beta2Held = Scalars.Held(beta2);
        using var gradWeight = Scalars.Held(1 - beta1);
        using var squareWeight = Scalars.Held(1 - beta2);
        using var eps = Scalars.Held(options.eps!.Value);
        foreach (var parameter in group.Parameters)
        {
            var grad = parameter.grad;
            if (grad is null) continue;
            if (maximize) grad = grad.neg();
            var state = (State)_state[parameter.Handle];
            state.step += 1;
            parameter.mul_(decay);
            state.exp_avg.mul_(beta1Held).add_(grad, gradWeight);
            state.exp_avg_sq.mul_(beta2Held).addcmul_(grad, grad, squareWeight);
            if (amsgrad)
            {
                var previous = state.max_exp_avg_sq;
                state.max_exp_avg_sq = maximum(previous, state.exp_avg_sq).DetachFromDisposeScope();
                previous.Dispose();
            }
            var second = amsgrad ? state.max_exp_avg_sq : state.exp_avg_sq;
            using var correction2 = Scalars.Held(Math.Sqrt(1 - Math.Pow(beta2, state.step)));
            using var stepSize = Scalars.Held(-lr / (1 - Math.Pow(beta1, state.step)));
            var denominator = second.sqrt().div_(correction2).add_(eps, Scalars.One);
            parameter.addcdiv_(state.exp_avg, denominator, stepSize);
        }
    }, closure);
}
