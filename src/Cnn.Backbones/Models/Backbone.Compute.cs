using Cnn.Backbones.Compute;
using static TorchSharp.torch;

namespace Cnn.Backbones.Models;

public abstract partial class Backbone
{
    // Nesting depth of Computed on this thread: only the outermost call prepares the input and finishes the outputs.
    [ThreadStatic] private static int _computeDepth;

    private ComputeSettings _compute = ComputeSettings.Float32;

    /// <summary>
    /// How this backbone computes its forward passes (every public <c>Forward…</c> method and <c>call</c>): float32 (the default,
    /// and what every parity test checks) or mixed precision, contiguous or channels-last. Whatever the setting, parameters stay
    /// float32 and every output is float32 and contiguous.
    /// </summary>
    /// <exception cref="ArgumentException">The settings name a type that is not a reduced floating-point type.</exception>
    public ComputeSettings Compute
    {
        get => _compute;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            value.Validate();
            _compute = value;
        }
    }

    /// <summary>
    /// Computes with <paramref name="settings"/> until the returned scope is disposed, then restores the settings in force
    /// before: for work that needs float32 whatever the backbone's settings (ONNX verification, Grad-CAM's gradients).
    /// </summary>
    /// <param name="settings">The settings to use meanwhile.</param>
    public IDisposable OverrideCompute(ComputeSettings settings)
    {
        var previous = Compute;
        Compute = settings;
        return new ComputeRestore(this, previous);
    }

    private sealed class ComputeRestore(Backbone model, ComputeSettings previous) : IDisposable
    {
        public void Dispose() => model.Compute = previous;
    }

    private Tensor Computed(Tensor x, Func<Tensor, Tensor> body) => Computed(x, body, ComputeSettings.Finish);

    /// <summary>
    /// Runs <paramref name="body"/> under <see cref="Compute"/>: at the outermost entry the input is prepared (channels-last), the
    /// precision scope entered, and <paramref name="finish"/> turns the results back into float32, contiguous tensors.
    /// </summary>
    private T Computed<T>(Tensor x, Func<Tensor, T> body, Func<T, T> finish)
    {
        var settings = _compute;
        if (_computeDepth > 0 || settings.IsFloat32Contiguous) return body(x);
        _computeDepth++;
        try
        {
            using var precision = MixedPrecision.Enter(settings.ReducedType);
            using var input = settings.PrepareInput(x);
            return finish(body(input));
        }
        finally
        {
            _computeDepth--;
        }
    }
}
