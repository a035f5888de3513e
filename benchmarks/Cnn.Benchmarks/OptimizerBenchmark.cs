using System.Diagnostics;
using System.Globalization;
using Cnn.Backbones.Models;
using Cnn.Backbones.Optimizers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Benchmarks;

/// <summary>
/// Milliseconds per optimizer step side by side in one run, per model, on its parameters with random gradients: our AdamW
/// (lr 1e-3, weight decay 0.01) and SGD (lr 0.01, momentum 0.9, weight decay 1e-4) through the per-tensor step and through
/// libtorch's fused kernel (what training runs on CPU float32 parameters, see <see cref="FusedKernels"/>), against PyTorch's
/// <c>torch.optim.AdamW</c> and <c>SGD</c> with the same options on torchvision's model, in their default (per-tensor) and
/// <c>foreach=True</c> forms. Same threads; each figure is the median of the timed steps after a warm-up step, and in brackets the fastest (the least
/// disturbed by other processes on a shared machine); ours per-tensor and fused are taken in turns. The ratios are of medians.
/// Usage: dotnet run -c Release --project benchmarks/Cnn.Benchmarks -- --optimizer [--models resnet18,resnet50] [--steps 10]
/// </summary>
internal static class OptimizerBenchmark
{
    public static void Run(IReadOnlyList<string> models, int steps, string python)
    {
        int threads = get_num_threads();
        Console.WriteLine($"optimizer step, ms, {threads} threads, median (fastest) of {steps} steps after a warm-up; fused kernels available: {FusedKernels.Available}");
        Console.WriteLine($"{"model",-10} {"optimizer",-9} {"parameters",16} | {"ours per-tensor",-17} | {"ours fused",-17} | {"PyTorch",-17} | {"PyTorch foreach",-17} | per-tensor / fused | best PyTorch / fused");
        foreach (var model in models)
        {
            manual_seed(1);
            using var net = ModelRegistry.Create(model, new ModelOptions { NumClasses = 1000 });
            var parameters = net.parameters().ToArray();
            foreach (var p in parameters)
            {
                using var scope = NewDisposeScope();
                p.grad = randn_like(p);
            }
            string size = $"{parameters.Sum(p => p.numel()) / 1e6:0.00}M in {parameters.Length}";
            var torch = PyTorch(python, model, steps, threads);
            if (torch is not null && torch.Tensors != parameters.Length)
                Console.WriteLine($"  (torchvision's {model} has {torch.Tensors} parameter tensors, ours {parameters.Length})");
            var rows = new (string Name, Func<bool, optim.Optimizer> Create, Timing[]? Theirs)[]
            {
                ("AdamW", fused => new HeldScalarAdamW(parameters, lr: 1e-3, weightDecay: 0.01) { Fused = fused }, torch?.AdamW),
                ("SGD", fused => new HeldScalarSgd(parameters, lr: 0.01, momentum: 0.9, weightDecay: 1e-4) { Fused = fused }, torch?.Sgd),
            };
            foreach (var (name, create, theirs) in rows)
            {
                var (perTensor, fused) = Milliseconds(create(false), create(true), steps);
                string pytorch = theirs is null ? $"{"not run",-17} | {"not run",-17}" : $"{Figure(theirs[0])} | {Figure(theirs[1])}";
                string ratio = theirs is null ? "" : $"{Math.Min(theirs[0].Median, theirs[1].Median) / fused.Median,20:0.00}";
                Console.WriteLine($"{model,-10} {name,-9} {size,16} | {Figure(perTensor)} | {Figure(fused)} | {pytorch} | {perTensor.Median / fused.Median,18:0.00} | {ratio}");
            }
        }
    }

    private static string Figure(Timing t) => $"{t.Median,7:0.0} ({t.Fastest,7:0.0})";

    /// <summary>Milliseconds per step: the median and the fastest.</summary>
    private sealed record Timing(double Median, double Fastest);

    /// <summary>
    /// The milliseconds of <paramref name="steps"/> steps of each optimizer, after one warm-up step each (which creates
    /// their state), taken in turns so that both see the same load on a shared machine. The optimizers are disposed.
    /// </summary>
    private static (Timing First, Timing Second) Milliseconds(optim.Optimizer first, optim.Optimizer second, int steps)
    {
        using (first)
        using (second)
        {
            List<double> a = [], b = [];
            for (int s = 0; s <= steps; s++)
            {
                double ta = Time(first), tb = Time(second);
                if (s == 0) continue;
                a.Add(ta);
                b.Add(tb);
            }
            return (Summary(a), Summary(b));
        }
    }

    private static double Time(optim.Optimizer optimizer)
    {
        using var scope = NewDisposeScope();
        var clock = Stopwatch.StartNew();
        optimizer.step();
        return clock.Elapsed.TotalMilliseconds;
    }

    private static Timing Summary(List<double> values)
    {
        values.Sort();
        return new Timing(values[values.Count / 2], values[0]);
    }

    /// <summary>PyTorch's parameter tensors, and its default and foreach steps of each optimizer.</summary>
    private sealed record TorchFigures(int Tensors, Timing[] AdamW, Timing[] Sgd);

    private static TorchFigures? PyTorch(string python, string model, int steps, int threads)
    {
        const string script = """
            import sys, time, torch, torchvision
            model, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
            torch.set_num_threads(threads)
            torch.manual_seed(1)
            params = list(getattr(torchvision.models, model)(num_classes=1000).parameters())
            for p in params:
                p.grad = torch.randn_like(p)
            def ms(opt):
                times = []
                for s in range(steps + 1):
                    t = time.perf_counter()
                    opt.step()
                    if s > 0: times.append(time.perf_counter() - t)
                times.sort()
                return [1000 * times[len(times) // 2], 1000 * times[0]]
            figures = [ms(torch.optim.AdamW(params, 1e-3, weight_decay=0.01, foreach=f)) for f in (False, True)]
            figures += [ms(torch.optim.SGD(params, 0.01, momentum=0.9, weight_decay=1e-4, foreach=f)) for f in (False, True)]
            print(len(params), " ".join(f"{v:.4f}" for f in figures for v in f))
            """;
        string? output = PythonScript.Run(python, script, model, steps, threads);
        if (output is null) return null;
        var values = output.Split(' ');
        var ms = values.Skip(1).Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        var timings = Enumerable.Range(0, ms.Length / 2).Select(i => new Timing(ms[2 * i], ms[2 * i + 1])).ToArray();
        return new TorchFigures(int.Parse(values[0], CultureInfo.InvariantCulture), timings[..2], timings[2..]);
    }
}
