using System.Diagnostics;
using Cnn.Backbones.Compute;
using Cnn.Backbones.Models;
using Cnn.Backbones.Optimizers;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Benchmarks;

/// <summary>
/// Training and inference img/s of one model under each compute setting (float32 or bfloat16, contiguous or channels-last), in
/// one process: the median of the timed steps after the first. Modes: fp32, fp32cl, bf16, bf16cl, and eval-… for inference,
/// with -fold for BatchNorm folded into the convolutions (eval-fp32-fold, eval-fp32cl-fold, …).
/// </summary>
internal static class ComputeComparison
{
    public static void Run(string model, int size, int batch, int steps, string mode, int channels = 3) =>
        Console.WriteLine($"{model} {size}px {channels}ch {mode}: {Measure(model, size, batch, steps, mode, channels):0.0} img/s (median of {steps - 1})");

    /// <summary>The median img/s of <paramref name="steps"/> − 1 timed steps (the first is a warm-up).</summary>
    public static double Measure(string model, int size, int batch, int steps, string mode, int channels = 3)
    {
        torch.manual_seed(1);
        using var net = ModelRegistry.Create(model, new ModelOptions { NumClasses = 10, InChannels = channels });
        var x = randn(batch, net.InChannels, size, size);
        net.Compute = new ComputeSettings(mode.Contains("bf16") ? ScalarType.BFloat16 : null, mode.Contains("cl"));
        var y = tensor(Enumerable.Range(0, batch).Select(i => (long)(i % 10)).ToArray());
        using var opt = new HeldScalarAdamW(net.parameters(), 1e-3);
        bool eval = mode.Contains("eval");
        if (eval) net.eval(); else net.train();
        if (mode.Contains("fold")) net.FoldBatchNorm();
        var times = new List<double>();
        var clock = new Stopwatch();
        for (int s = 0; s < steps; s++)
        {
            clock.Restart();
            using var scope = NewDisposeScope();
            if (eval)
            {
                using var ng = no_grad();
                net.call(x);
            }
            else
            {
                var loss = nn.functional.cross_entropy(net.ForwardTrain(x).Logits, y);
                opt.zero_grad();
                loss.backward();
                opt.step();
            }
            if (s > 0) times.Add(clock.Elapsed.TotalSeconds);
        }
        times.Sort();
        return batch / times[times.Count / 2];
    }
}
