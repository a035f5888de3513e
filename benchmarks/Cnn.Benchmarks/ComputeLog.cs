using Cnn.Backbones.Compute;
using Microsoft.ML;
using static TorchSharp.torch;

namespace Cnn.Benchmarks;

/// <summary>What a fit computed in, read from the trainer's log line ("… computing in bfloat16, channels-last (auto: …)").</summary>
internal sealed class ComputeLog
{
    private const string Prefix = "computing in ";

    /// <summary>Listens to <paramref name="ml"/>'s log for the trainer's compute line.</summary>
    public ComputeLog(MLContext ml) => ml.Log += (_, e) =>
    {
        int at = e.Message.IndexOf(Prefix, StringComparison.Ordinal);
        if (at >= 0) Description = e.Message[(at + Prefix.Length)..].Split(" (")[0].TrimEnd('.');
    };

    /// <summary>The compute as the trainer describes it: <c>float32</c>, <c>bfloat16, channels-last</c>; empty before the fit logs it.</summary>
    public string Description { get; private set; } = "";

    /// <summary>The same settings, for a bare loop over a backbone.</summary>
    public ComputeSettings Settings => new(Description.Contains("bfloat16") ? ScalarType.BFloat16 : null, Description.Contains("channels-last"));

    /// <summary>The PyTorch mode that computes alike: <c>bf16cl</c>, <c>bf16</c>, <c>fp32cl</c> or <c>fp32</c>.</summary>
    public string PyTorchMode => (Description.Contains("bfloat16") ? "bf16" : "fp32") + (Description.Contains("channels-last") ? "cl" : "");
}
