using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Optimizers;

/// <summary>
/// libtorch's fused optimizer kernels, <c>torch._fused_adamw_</c> and <c>torch._fused_sgd_</c> (what <c>fused=True</c> runs in
/// PyTorch 2): one native call updates every tensor of a list in a single vectorized, multi-threaded pass over each, where a
/// per-tensor step makes about seven calls and as many passes over memory per tensor. TorchSharp 0.107 binds neither, so they are
/// called from a TorchScript function compiled once per process.
/// </summary>
/// <remarks>
/// The kernels want dense tensors of one device and floating type. <see cref="Accepts"/> is the rule the optimizers apply: a CPU
/// float32 parameter whose gradient and state are contiguous float32 tensors; any other parameter takes the per-tensor path.
/// The kernels compute in float32 as PyTorch's per-tensor step does, in another order, so the two differ by float rounding only.
/// Numbers pass as held <see cref="Scalar"/>s: TorchScript's invoke would otherwise make temporary ones (see <c>Native.Scalars</c>).
/// </remarks>
internal static class FusedKernels
{
    private const string Source = """
        def adamw(params: List[Tensor], grads: List[Tensor], exp_avgs: List[Tensor], exp_avg_sqs: List[Tensor], max_exp_avg_sqs: List[Tensor],
                  steps: Tensor, lr: float, beta1: float, beta2: float, weight_decay: float, eps: float, amsgrad: bool, maximize: bool):
            torch._fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps.unbind(0), lr=lr, beta1=beta1, beta2=beta2,
                                weight_decay=weight_decay, eps=eps, amsgrad=amsgrad, maximize=maximize)

        def sgd(params: List[Tensor], grads: List[Tensor], momentum_buffers: List[Tensor], weight_decay: float, momentum: float, lr: float,
                dampening: float, nesterov: bool, maximize: bool, is_first_step: bool):
            torch._fused_sgd_(params, grads, momentum_buffers, weight_decay=weight_decay, momentum=momentum, lr=lr, dampening=dampening,
                              nesterov=nesterov, maximize=maximize, is_first_step=is_first_step)
        """;

    private static readonly Lazy<jit.CompilationUnit?> Unit = new(Compile, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Whether this libtorch has the kernels (it compiled the functions that call them).</summary>
    public static bool Available => Unit.Value is not null;

    private static jit.CompilationUnit? Compile()
    {
        try
        {
            return jit.compile(Source + "\n"); // TorchScript's parser fails on a last statement without its line end
        }
        catch (Exception ex) when (ex is ExternalException or InvalidOperationException or ArgumentException or NotSupportedException)
        {
            return null; // a libtorch without the fused kernels, or a TorchScript it cannot compile: the optimizers keep their per-tensor step
        }
    }

    /// <summary>Whether <paramref name="parameter"/>, its gradient and its state tensors can be updated by a fused kernel.</summary>
    public static bool Accepts(Tensor parameter, Tensor grad, params Tensor?[] state)
    {
        if (parameter.device_type != DeviceType.CPU || !Dense(parameter) || !Dense(grad) || grad.device_type != DeviceType.CPU || grad.is_sparse)
            return false;
        foreach (var s in state)
            if (s is not null && (!Dense(s) || s.device_type != DeviceType.CPU))
                return false;
        return true;
    }

    private static bool Dense(Tensor t) => t.dtype == ScalarType.Float32 && t.is_contiguous();

    /// <summary>
    /// One AdamW step of PyTorch's (<c>torch.optim.AdamW</c>) on every tensor of the lists; <paramref name="steps"/> is each
    /// parameter's step count after this step.
    /// </summary>
    public static void AdamW(Tensor[] parameters, Tensor[] grads, Tensor[] expAvgs, Tensor[] expAvgSqs, Tensor[] maxExpAvgSqs, float[] steps,
        double lr, double beta1, double beta2, double weightDecay, double eps, bool amsgrad, bool maximize)
    {
        using var stepCounts = tensor(steps);
        using var numbers = Hold(lr, beta1, beta2, weightDecay, eps);
        Unit.Value!.invoke("adamw", parameters, grads, expAvgs, expAvgSqs, maxExpAvgSqs, stepCounts,
            numbers[0], numbers[1], numbers[2], numbers[3], numbers[4], amsgrad, maximize);
    }

    /// <summary>
    /// One SGD step of PyTorch's (<c>torch.optim.SGD</c>) on every tensor of the lists. With momentum, <paramref name="firstStep"/>
    /// makes each buffer the (decayed, maximized) gradient, as PyTorch's first step does; its buffers' values are then unused.
    /// </summary>
    public static void Sgd(Tensor[] parameters, Tensor[] grads, Tensor[] momentumBuffers, double weightDecay, double momentum, double lr,
        double dampening, bool nesterov, bool maximize, bool firstStep)
    {
        using var numbers = Hold(weightDecay, momentum, lr, dampening);
        Unit.Value!.invoke("sgd", parameters, grads, momentumBuffers, numbers[0], numbers[1], numbers[2], numbers[3], nesterov, maximize, firstStep);
    }

    private static HeldScalars Hold(params double[] values) => new(values);

    /// <summary>Scalars held until disposed, after the native call that reads them.</summary>
    private sealed class HeldScalars(double[] values) : IDisposable
    {
        private readonly Scalar[] _scalars = values.Select(v => v.ToScalar()).ToArray();

        public Scalar this[int index] => _scalars[index];

        public void Dispose()
        {
            foreach (var s in _scalars) s.Dispose();
        }
    }
}
