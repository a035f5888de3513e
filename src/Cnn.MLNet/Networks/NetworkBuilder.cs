using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Networks;

/// <summary>The one way a <see cref="NetworkSpec"/> becomes a <see cref="CnnNetwork"/>, as timm's <c>build_model_with_cfg</c>.</summary>
public static class NetworkBuilder
{
    private static readonly object SeedGate = new();

    /// <summary>
    /// Builds the spec's backbone on <paramref name="device"/> and loads <see cref="ModelOptions.WeightsPath"/> when set (timm's
    /// pretrained rule: the body strictly, a classifier of another class count left fresh, the first convolution adapted).
    /// With <paramref name="seed"/>, TorchSharp's global generator is seeded first, under a process-wide lock: weight
    /// initialisation draws from that one generator, so without the lock two fits running at once in a process would interleave
    /// their draws and the same seed would not give the same initial weights. (Other code drawing from that generator at the same
    /// time, or dropout during training, still can: as in PyTorch, bit-for-bit reproducibility needs one fit at a time.)
    /// </summary>
    /// <param name="spec">What to build; validated first.</param>
    /// <param name="device">Where the network runs.</param>
    /// <param name="seed">Seed of the initial weights, or null to draw from the generator as it is.</param>
    /// <returns>The network, in training mode as built; its spec has the weights path cleared.</returns>
    public static CnnNetwork Build(NetworkSpec spec, Device device, int? seed = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        spec.Validate();
        TorchRuntime.EnsureLoaded();
        if (seed is not { } value) return Create(spec, device);
        lock (SeedGate)
        {
            torch.manual_seed(value);
            return Create(spec, device);
        }
    }

    private static CnnNetwork Create(NetworkSpec spec, Device device)
    {
        var model = ModelRegistry.Create(spec.Architecture, spec.Model);
        try
        {
            model.to(device);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return new CnnNetwork(spec with { Model = spec.Model with { WeightsPath = null, Weights = null } }, model, device);
    }

    /// <summary>Resolves a device option: CUDA when asked for or (Auto) when available.</summary>
    /// <exception cref="InvalidOperationException">CUDA was asked for but no CUDA GPU is available.</exception>
    public static Device ResolveDevice(CnnDevice device)
    {
        TorchRuntime.EnsureLoaded();
        bool cuda = device switch
        {
            CnnDevice.Cpu => false,
            CnnDevice.Cuda => torch.cuda.is_available()
                ? true
                : throw new InvalidOperationException("Device is Cuda but no CUDA GPU is available to TorchSharp. Reference a libtorch-cuda-* backend package (e.g. libtorch-cuda-12.8-linux-x64) instead of libtorch-cpu-* in the application, on a machine with an NVIDIA driver, or use CnnDevice.Cpu/Auto."),
            _ => torch.cuda.is_available(),
        };
        return cuda ? CUDA : CPU;
    }
}
