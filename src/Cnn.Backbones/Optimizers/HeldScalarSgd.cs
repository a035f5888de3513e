using Cnn.Backbones.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Optimizers;

/// <summary>
/// <c>torch.optim.SGD</c>: TorchSharp's <see cref="SGD"/> (options, parameter groups, state and its saved form) with its own step:
/// CPU float32 parameters are updated together by libtorch's fused kernel (<see cref="FusedKernels"/>), one native call per
/// parameter group (two on the step that creates momentum buffers for some of them); any other parameter by a per-tensor step
/// that holds its scalars for each native call, where TorchSharp's makes temporary ones per parameter (see <see cref="Scalars"/>).
/// </summary>
/// <remarks>
/// The update is PyTorch's: <c>g ← −g</c> when maximizing, <c>g ← g + λp</c>; with momentum μ, <c>b ← g</c> on the first step and <c>b ← μb + (1 − dampening)g</c>
/// after, <c>g ← g + μb</c> (Nesterov) or <c>g ← b</c>; then <c>p ← p − lr·g</c>. (TorchSharp's own step maximizes by adding
/// <c>lr·g</c> at the end, which turns the weight decay's sign; PyTorch negates the gradient first, as here.) The gradients are
/// left as they are; the state TorchSharp saves (<c>momentum_buffer</c>) is updated in place.
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

    /// <summary>Whether the fused kernel may be used (the default); false runs the per-tensor step for every parameter.</summary>
    internal bool Fused { get; init; } = true;

    /// <summary>Parameter updates the fused kernel has made so far (one per parameter per step).</summary>
    internal long FusedUpdates { get; private set; }

    /// <inheritdoc />
    public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
    {
        var options = group.Options;
        bool withMomentum = options.momentum!.Value != 0;
        var grads = new List<Tensor>();
        // Parameters whose momentum buffer exists (or that need none), and those whose first step creates it.
        var (going, starting) = (new FusedBatch(), new FusedBatch());
        try
        {
            foreach (var parameter in group.Parameters)
            {
                var grad = parameter.grad;
                if (grad is null) continue;
                grads.Add(grad);
                var state = (State)_state[parameter.Handle];
                if (!Fused || !FusedKernels.Available || !FusedKernels.Accepts(parameter, grad, withMomentum ? state.momentum_buffer : null))
                    StepOne(parameter, grad, state, options);
                else if (withMomentum && state.momentum_buffer is null)
                {
                    state.momentum_buffer = empty_like(parameter).DetachFromDisposeScope(); // the kernel's first step writes it
                    starting.Add(parameter, grad, state.momentum_buffer);
                }
                else
                    going.Add(parameter, grad, withMomentum ? state.momentum_buffer : null);
            }
            Run(going, options, firstStep: false);
            Run(starting, options, firstStep: true);
        }
        finally
        {
            foreach (var g in grads) g.Dispose(); // the handles this step took; the gradients stay on their parameters
        }
    }, closure);

    private void Run(FusedBatch batch, Options options, bool firstStep)
    {
        if (batch.Parameters.Count == 0) return;
        FusedKernels.Sgd([.. batch.Parameters], [.. batch.Grads], [.. batch.MomentumBuffers], options.weight_decay!.Value, options.momentum!.Value,
            options.LearningRate!.Value, options.dampening!.Value, options.nesterov!.Value, options.maximize!.Value, firstStep);
        FusedUpdates += batch.Parameters.Count;
    }

    /// <summary>The per-tensor step of one parameter.</summary>
    private static void StepOne(Parameter parameter, Tensor grad, State state, Options options)
    {
        double momentum = options.momentum!.Value, weightDecay = options.weight_decay!.Value;
        using var scope = NewDisposeScope();
        using var decay = Scalars.Held(weightDecay);
        using var momentumHeld = Scalars.Held(momentum);
        using var gradWeight = Scalars.Held(1 - options.dampening!.Value);
        using var rate = Scalars.Held(-options.LearningRate!.Value);
        if (options.maximize!.Value) grad = grad.neg();
        if (weightDecay != 0) grad = grad.add(parameter, decay);
        if (momentum != 0)
        {
            if (state.momentum_buffer is null) state.momentum_buffer = grad.clone().detach().DetachFromDisposeScope();
            else state.momentum_buffer.mul_(momentumHeld).add_(grad, gradWeight);
            grad = options.nesterov!.Value ? grad.add(state.momentum_buffer, momentumHeld) : state.momentum_buffer;
        }
        parameter.add_(grad, rate);
    }

    /// <summary>The tensors of one fused call.</summary>
    private sealed class FusedBatch
    {
        public List<Tensor> Parameters { get; } = [];
        public List<Tensor> Grads { get; } = [];
        public List<Tensor> MomentumBuffers { get; } = [];

        public void Add(Parameter parameter, Tensor grad, Tensor? momentumBuffer)
        {
            Parameters.Add(parameter);
            Grads.Add(grad);
            if (momentumBuffer is not null) MomentumBuffers.Add(momentumBuffer);
        }
    }
}
