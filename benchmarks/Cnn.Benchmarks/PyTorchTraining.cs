using System.Globalization;

namespace Cnn.Benchmarks;

/// <summary>
/// PyTorch's side of the training benchmark (torchvision's model, <c>torch.optim.AdamW</c>, cross-entropy on random tensors, a
/// warm-up step then the timed ones), run by the reference Python.
/// </summary>
internal static class PyTorchTraining
{
    /// <summary>PyTorch's settings in the order <see cref="Measure"/> returns their rates.</summary>
    public static readonly string[] Modes = ["fp32", "fp32 cl", "autocast", "autocast cl"];

    // The training loop both scripts share: train(...) returns img/s (median step), the timed steps' phases (total, forward,
    // backward, optimizer step; seconds), the network and its input.
    private const string Loop = """
        import sys, time, contextlib, statistics, torch, torchvision
        def context(autocast):
            return torch.autocast("cpu", torch.bfloat16) if autocast else contextlib.nullcontext()
        def train(model, size, batch, steps, channels_last, autocast):
            torch.manual_seed(1)
            net = getattr(torchvision.models, model)(num_classes=10).train()
            x, y = torch.randn(batch, 3, size, size), torch.arange(batch) % 10
            if channels_last:
                net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
            opt = torch.optim.AdamW(net.parameters(), 1e-3)
            times, phases = [], []
            for s in range(steps):
                t0 = time.perf_counter()
                with context(autocast):
                    out = net(x)
                    logits = out.logits if hasattr(out, "logits") else out
                    t1 = time.perf_counter()
                    loss = torch.nn.functional.cross_entropy(logits.float(), y)
                opt.zero_grad(); t2 = time.perf_counter()
                loss.backward(); t3 = time.perf_counter()
                opt.step(); t4 = time.perf_counter()
                loss.item(); t5 = time.perf_counter()
                if s > 0:
                    times.append(t5 - t0)
                    phases.append((t5 - t0, t1 - t0, t3 - t2, t4 - t3))
            return batch / sorted(times)[len(times) // 2], phases, net, x
        """;

    // The img/s of each setting, in the order of Modes (the autocast ones where bf16).
    private const string Rates = Loop + """

        model, size, batch, steps, threads, bf16 = sys.argv[1], *map(int, sys.argv[2:7])
        torch.set_num_threads(threads)
        modes = [(False, False), (True, False)] + ([(False, True), (True, True)] if bf16 else [])
        print(" ".join(f"{train(model, size, batch, steps, cl, ac)[0]:.3f}" for cl, ac in modes))
        """;

    // One setting in a fresh process: "rate peak_bytes start_bytes" (VmHWM after the run, VmRSS before the model was built), then
    // with profile=1 the step phases "total forward batchnorm casts backward optimizer host" in ms, BatchNorm and casts from
    // torch.profiler over two extra forward passes (after the peak was read).
    private const string Single = Loop + """

        from torch.profiler import profile, ProfilerActivity
        def resident(key):
            with open("/proc/self/status") as status:
                return next(int(line.split()[1]) * 1024 for line in status if line.startswith(key))
        def under(event, name):
            parent = event.cpu_parent
            while parent is not None:
                if parent.name == name: return True
                parent = parent.cpu_parent
            return False
        def forward_ops(net, x, autocast):
            # ms of BatchNorm (aten::batch_norm, less any cast inside it) and of casts (aten::_to_copy) in one profiled forward pass
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                with context(autocast):
                    net(x)
            events = prof.events()
            casts = [e for e in events if e.name == "aten::_to_copy" and not under(e, "aten::_to_copy")]
            norm = sum(e.cpu_time_total for e in events if e.name == "aten::batch_norm" and not under(e, "aten::batch_norm"))
            norm -= sum(e.cpu_time_total for e in casts if under(e, "aten::batch_norm"))
            return norm / 1e3, sum(e.cpu_time_total for e in casts) / 1e3
        model, size, batch, steps, threads, cl, ac, profiled = sys.argv[1], *map(int, sys.argv[2:9])
        torch.set_num_threads(threads)
        start = resident("VmRSS:")
        rate, phases, net, x = train(model, size, batch, steps, bool(cl), bool(ac))
        print(f"{rate:.3f} {resident('VmHWM:')} {start}")
        if profiled:
            ops = [forward_ops(net, x, bool(ac)) for _ in range(2)]
            median = [statistics.median(p[k] for p in phases) * 1e3 for k in range(4)]
            host = statistics.median((p[0] - p[1] - p[2] - p[3]) * 1e3 for p in phases)
            norm, casts = statistics.mean(o[0] for o in ops), statistics.mean(o[1] for o in ops)
            print(f"{median[0]:.3f} {median[1]:.3f} {norm:.3f} {casts:.3f} {median[2]:.3f} {median[3]:.3f} {host:.3f}")
        """;

    /// <summary>The img/s of each setting of <see cref="Modes"/> (the autocast ones only where <paramref name="bf16"/>); null when the Python or its torch is missing.</summary>
    public static double[]? Measure(string python, string model, int size, int batch, int steps, int threads, bool bf16) =>
        PythonScript.Run(python, Rates, model, size, batch, steps, threads, bf16 ? 1 : 0)?.Split(' ')
            .Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();

    /// <summary>
    /// One setting of <see cref="Modes"/> (by index) in a fresh Python process: its img/s, peak resident MB, resident MB at the
    /// start and, when <paramref name="profiled"/>, its step phases; null without torch.
    /// </summary>
    public static (double Rate, double PeakMegabytes, double StartMegabytes, StepPhases? Phases)? MeasureOne(string python, string model, int size,
        int batch, int steps, int threads, int mode, bool profiled)
    {
        string? output = PythonScript.Run(python, Single, model, size, batch, steps, threads, mode % 2, mode / 2, profiled ? 1 : 0);
        if (output is null) return null;
        var lines = output.Split('\n');
        var v = lines[0].Split(' ');
        return (double.Parse(v[0], CultureInfo.InvariantCulture), long.Parse(v[1], CultureInfo.InvariantCulture) / 1e6,
            long.Parse(v[2], CultureInfo.InvariantCulture) / 1e6, profiled ? StepPhases.Parse(lines[1].Split(' ')) : null);
    }
}
