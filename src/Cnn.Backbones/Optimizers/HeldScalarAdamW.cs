using Cnn.Backbones.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Optimizers;

/// <summary>
/// <c>torch.optim.AdamW</c>: TorchSharp's <see cref="AdamW"/> (options, parameter groups, state and its saved form) with its own
/// step: CPU float32 parameters are updated together by libtorch's fused kernel (<see cref="FusedKernels"/>), one native call
/// per parameter group; any other parameter by a per-tensor step that holds its scalars for each native call. TorchSharp's own
/// step makes about seven temporary scalars per parameter per step, each of which a garbage collection on another thread can
/// free while libtorch reads it (see <see cref="Scalars"/>).
/// </summary>
/// <remarks>
/// The update is PyTorch's (<c>torch.optim.AdamW</c>, <c>amsgrad</c> and <c>maximize</c> included): decoupled decay
/// <c>p ← p(1 − lr·λ)</c>, moments <c>m ← β₁m + (1 − β₁)g</c>, <c>v ← β₂v + (1 − β₂)g²</c>, then
/// <c>p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)</c>. With λ = 0 it is Adam. Both paths keep the state TorchSharp saves
/// (<c>step</c>, <c>exp_avg</c>, <c>exp_avg_sq</c>, <c>max_exp_avg_sq</c>), updated in place.
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

    /// <summary>Whether the fused kernel may be used (the default); false runs the per-tensor step for every parameter.</summary>
    internal bool Fused { get; init; } = true;

    /// <summary>Parameter updates the fused kernel has made so far (one per parameter per step).</summary>
    internal long FusedUpdates { get; private set; }

    /// <inheritdoc />
    public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
    {
        var options = (Options)group.Options;
        bool amsgrad = options.amsgrad!.Value;
        var grads = new List<Tensor>();
        var fused = new FusedBatch();
        try
        {
            foreach (var parameter in group.Parameters)
            {
                var grad = parameter.grad;
                if (grad is null) continue;
                grads.Add(grad);
                var state = (State)_state[parameter.Handle];
                state.step += 1;
                if (Fused && FusedKernels.Available && FusedKernels.Accepts(parameter, grad, state.exp_avg, state.exp_avg_sq, amsgrad ? state.max_exp_avg_sq : null))
                    fused.Add(parameter, grad, state, amsgrad);
                else
                    StepOne(parameter, grad, state, options);
            }
            if (fused.Parameters.Count > 0)
            {
                FusedKernels.AdamW([.. fused.Parameters], [.. fused.Grads], [.. fused.ExpAvgs], [.. fused.ExpAvgSqs], [.. fused.MaxExpAvgSqs], [.. fused.Steps],
                    options.LearningRate!.Value, options.beta1!.Value, options.beta2!.Value, options.weight_decay!.Value, options.eps!.Value, amsgrad,
                    options.maximize!.Value);
                FusedUpdates += fused.Parameters.Count;
            }
        }
        finally
        {
            foreach (var g in grads) g.Dispose(); // the handles this step took; the gradients stay on their parameters
        }
    }, closure);

    /// <summary>The per-tensor step of one parameter whose <c>step</c> is already counted.</summary>
    private static void StepOne(Parameter parameter, Tensor grad, State state, Options options)
    {
        double beta1 = options.beta1!.Value, beta2 = options.beta2!.Value, lr = options.LearningRate!.Value;
        bool amsgrad = options.amsgrad!.Value;
        using var scope = NewDisposeScope();
        using var decay = Scalars.Held(1 - lr * options.weight_decay!.Value);
        using var beta1Held = Scalars.Held(beta1);
        using var beta2Held = Scalars.Held(beta2);
        using var gradWeight = Scalars.Held(1 - beta1);
        using var squareWeight = Scalars.Held(1 - beta2);
        using var eps = Scalars.Held(options.eps!.Value);
        if (options.maximize!.Value) grad = grad.neg();
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

    /// <summary>The tensors of one fused call.</summary>
    private sealed class FusedBatch
    {
        public List<Tensor> Parameters { get; } = [];
        public List<Tensor> Grads { get; } = [];
        public List<Tensor> ExpAvgs { get; } = [];
        public List<Tensor> ExpAvgSqs { get; } = [];
        public List<Tensor> MaxExpAvgSqs { get; } = [];
        public List<float> Steps { get; } = [];

        public void Add(Parameter parameter, Tensor grad, State state, bool amsgrad)
        {
            Parameters.Add(parameter);
            Grads.Add(grad);
            ExpAvgs.Add(state.exp_avg);
            ExpAvgSqs.Add(state.exp_avg_sq);
            if (amsgrad) MaxExpAvgSqs.Add(state.max_exp_avg_sq);
            Steps.Add(state.step);
        }
    }
}
