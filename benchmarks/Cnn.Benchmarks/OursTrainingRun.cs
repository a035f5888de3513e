using System.Diagnostics;
using System.Globalization;
using Cnn.Backbones.Compute;
using Cnn.Backbones.Models;
using Cnn.Backbones.Optimizers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Benchmarks;

/// <summary>
/// Our side of the training benchmark's step-phase profile and peak memory: a fresh child process (<c>--training-child MODEL SIZE
/// BATCH STEPS MODE</c>) runs the same loop as <see cref="ComputeComparison"/> (our backbone, AdamW, cross-entropy on random
/// tensors, a warm-up step then the timed ones) with each phase timed, and prints the phases' medians, its peak resident set
/// (<c>VmHWM</c>) and its resident set before the model was built.
/// BatchNorm is timed by forward pre- and post-hooks on every BatchNorm module; the casts by <see cref="MixedPrecision.CastClock"/>,
/// which our convolution and linear layers run their input, weight and bias casts in.
/// </summary>
internal static class OursTrainingRun
{
    /// <summary>The child process's command-line flag.</summary>
    public const string Flag = "--training-child";

    /// <summary>The result of one run in a fresh child process.</summary>
    public static (StepPhases Phases, double PeakMegabytes, double StartMegabytes) InChild(string model, int size, int batch, int steps, string mode)
    {
        var values = ChildProcess.Run(Flag, model, size, batch, steps, mode).Split(' ');
        return (StepPhases.Parse(values), long.Parse(values[7], CultureInfo.InvariantCulture) / 1e6, long.Parse(values[8], CultureInfo.InvariantCulture) / 1e6);
    }

    /// <summary>The child's work: prints the median phases, the peak resident bytes and the resident bytes at the start.</summary>
    /// <param name="mode">fp32, fp32cl, bf16 or bf16cl, as <see cref="ComputeComparison"/> names them.</param>
    public static void Run(string model, int size, int batch, int steps, string mode)
    {
        long start = ProcessMemory.ResidentBytes();
        torch.manual_seed(1);
        using var net = ModelRegistry.Create(model, new ModelOptions { NumClasses = 10 });
        net.Compute = new ComputeSettings(mode.Contains("bf16") ? ScalarType.BFloat16 : null, mode.Contains("cl"));
        net.train();
        var x = randn(batch, net.InChannels, size, size);
        var y = tensor(Enumerable.Range(0, batch).Select(i => (long)(i % 10)).ToArray());
        using var opt = new HeldScalarAdamW(net.parameters(), 1e-3);

        var norms = new Stopwatch();
        var casts = new Stopwatch();
        foreach (var norm in net.modules().OfType<BatchNorm>())
        {
            norm.register_forward_pre_hook((_, input) => { norms.Start(); return input; });
            norm.register_forward_hook((_, _, output) => { norms.Stop(); return output; });
        }
        MixedPrecision.CastClock = casts;
        var phases = new List<StepPhases>();
        var clock = new Stopwatch();
        try
        {
            for (int s = 0; s < steps; s++)
            {
                norms.Reset();
                casts.Reset();
                clock.Restart();
                double forward, lossAndZeroGrad, backward, optimizer;
                using (NewDisposeScope())
                {
                    var logits = net.ForwardTrain(x).Logits;
                    forward = clock.Elapsed.TotalMilliseconds;
                    var loss = nn.functional.cross_entropy(logits, y);
                    opt.zero_grad();
                    lossAndZeroGrad = clock.Elapsed.TotalMilliseconds;
                    loss.backward();
                    backward = clock.Elapsed.TotalMilliseconds;
                    opt.step();
                    optimizer = clock.Elapsed.TotalMilliseconds;
                    loss.item<float>();
                }
                double total = clock.Elapsed.TotalMilliseconds;
                Cnn.Backbones.Native.NativeHeap.KeepStepMemory(); // as the trainer's loop does after its first step
                (backward, optimizer) = (backward - lossAndZeroGrad, optimizer - backward);
                if (s > 0)
                    phases.Add(new(total, forward, norms.Elapsed.TotalMilliseconds, casts.Elapsed.TotalMilliseconds, backward, optimizer,
                        total - forward - backward - optimizer));
            }
        }
        finally
        {
            MixedPrecision.CastClock = null;
        }
        Console.WriteLine(FormattableString.Invariant($"{StepPhases.Median(phases)} {ProcessMemory.PeakResidentBytes()} {start}"));
    }
}
