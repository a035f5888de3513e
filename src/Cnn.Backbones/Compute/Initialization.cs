using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Compute;

/// <summary>The default initialisation of <c>torch.nn.Conv2d</c> and <c>torch.nn.Linear</c> (<c>reset_parameters</c>).</summary>
internal static class Initialization
{
    /// <summary>Kaiming-uniform weight (a = √5) and a bias uniform in ±1/√fan_in, drawing in TorchSharp's (and PyTorch's) order.</summary>
    /// <param name="weight">The weight to fill.</param>
    /// <param name="bias">The bias to fill, or null.</param>
    public static void ResetLikeTorch(Tensor weight, Tensor? bias)
    {
        nn.init.kaiming_uniform_(weight, Math.Sqrt(5));
        if (bias is null) return;
        var (fanIn, _) = nn.init.CalculateFanInAndFanOut(weight);
        if (fanIn > 0) nn.init.uniform_(bias, -1 / Math.Sqrt(fanIn), 1 / Math.Sqrt(fanIn));
    }
}
