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
/// <c>foreach=True</c> forms. Same threads; each figure is the median of the timed steps after a warm-up step, ours per-tensor and fused taken in turns.
/// Usage: dotnet run -c Release --project benchmarks/Cnn.Benchmarks -- --optimizer [--models resnet18,resnet50] [--steps 10]
/// </summary>
internal static class OptimizerBenchmark
{
    public static void Run(IReadOnlyList<string> models, int steps, string python)
    {
        int threads = get_num_threads();
        Console.WriteLine($"optimizer step, ms, {threads} threads, median of {steps} steps after a warm-up; fused kernels available: {FusedKernels.Available}");
        Console.WriteLine($"{"model",-10} {"optimizer",-9} {"parameters",16} | ours per-tensor | ours fused | PyTorch | PyTorch foreach | per-tensor / fused | PyTorch / fused");
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
            var rows = new (string Name, Func<bool, optim.Optimizer> Create, double[]? Theirs)[]
            {
                ("AdamW", fused => new HeldScalarAdamW(parameters, lr: 1e-3, weightDecay: 0.01) { Fused = fused }, torch?.AdamW),
                ("SGD", fused => new HeldScalarSgd(parameters, lr: 0.01, momentum: 0.9, weightDecay: 1e-4) { Fused = fused }, torch?.Sgd),
            };
            foreach (var (name, create, theirs) in rows)
            {
                var (perTensor, fused) = Milliseconds(create(false), create(true), steps);
                string pytorch = theirs is null ? $"{"not run",7} | {"not run",15}" : $"{theirs[0],7:0.00} | {theirs[1],15:0.00}";
                string ratio = theirs is null ? "" : $"{theirs.Min() / fused,15:0.00}";
                Console.WriteLine($"{model,-10} {name,-9} {size,16} | {perTensor,15:0.00} | {fused,10:0.00} | {pytorch} | {perTensor / fused,18:0.00} | {ratio}");
            }
        }
    }

    /// <summary>
    /// The median milliseconds of <paramref name="steps"/> steps of each optimizer, after one warm-up step each (which creates
    /// their state), taken in turns so that both see the same load on a shared machine. The optimizers are disposed.
    /// </summary>
    private static (double First, double Second) Milliseconds(optim.Optimizer first, optim.Optimizer second, int steps)
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
            return (Median(a), Median(b));
        }
    }

    private static double Time(optim.Optimizer optimizer)
    {
        using var scope = NewDisposeScope();
        var clock = Stopwatch.StartNew();
        optimizer.step();
        return clock.Elapsed.TotalMilliseconds;
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }

    private sealed record TorchFigures(int Tensors, double[] AdamW, double[] Sgd);

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
                return 1000 * sorted(times)[len(times) // 2]
            figures = [ms(torch.optim.AdamW(params, 1e-3, weight_decay=0.01, foreach=f)) for f in (False, True)]
            figures += [ms(torch.optim.SGD(params, 0.01, momentum=0.9, weight_decay=1e-4, foreach=f)) for f in (False, True)]
            print(len(params), " ".join(f"{v:.4f}" for v in figures))
            """;
        string? output = PythonScript.Run(python, script, model, steps, threads);
        if (output is null) return null;
        var values = output.Split(' ');
        var ms = values.Skip(1).Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        return new TorchFigures(int.Parse(values[0], CultureInfo.InvariantCulture), ms[..2], ms[2..]);
    }
}
