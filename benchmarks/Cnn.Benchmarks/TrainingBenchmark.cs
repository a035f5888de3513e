using System.Globalization;
using Cnn.Backbones.Compute;

namespace Cnn.Benchmarks;

/// <summary>
/// Training img/s side by side in one run, per model and input size, on random tensors (the network's own cost, no data path):
/// ours in float32 (a bare TorchSharp loop over our backbone, as <see cref="ComputeComparison"/> runs it), channels-last, and
/// bfloat16 (with and without channels-last) where the CPU has native bfloat16 (the trainer's default is float32 channels-last
/// at 64 px and more; Auto precision picks bfloat16 channels-last where the CPU has it); PyTorch's fp32, fp32
/// channels-last and, where native, <c>torch.autocast("cpu", bfloat16)</c> with and without channels-last. Same batch, threads,
/// optimizer (AdamW) and loss; each figure is the median of the timed steps after a warm-up step.
/// Usage: dotnet run -c Release --project benchmarks/Cnn.Benchmarks -- --training [--models resnet18,resnet50] [--sizes 112,224] [--batch 32] [--steps 8]
/// </summary>
internal static class TrainingBenchmark
{
    public static void Run(IReadOnlyList<string> models, IReadOnlyList<int> sizes, int batch, int steps, string python)
    {
        // Our bfloat16 needs it in libtorch's oneDNN (not capped, see TorchRuntime.OneDnnStatus); PyTorch's only in the CPU.
        bool bf16 = CpuFeatures.HasNativeBFloat16, torchBf16 = CpuFeatures.BFloat16InstructionSets.Count > 0;
        int threads = TorchSharp.torch.get_num_threads();
        Console.WriteLine($"training img/s, batch {batch}, {threads} threads, median of {steps - 1} steps after a warm-up; native bfloat16: " +
                          $"{(bf16 ? "yes" : $"no (our bfloat16 rows skipped: emulated, far slower; oneDNN: {Cnn.Backbones.Native.TorchRuntime.OneDnnStatus})")}");
        string[] ours = bf16 ? ["fp32", "fp32cl", "bf16", "bf16cl"] : ["fp32", "fp32cl"];
        Console.WriteLine($"{"model",-10} {"size",5} | {string.Join(" | ", ours.Select(m => $"ours {m,-6}"))} | PyTorch fp32 | PyTorch fp32 cl{(torchBf16 ? " | PyTorch autocast | autocast cl" : "")} | ours fp32 / PyTorch fp32 | best ours / best PyTorch");
        foreach (var model in models)
            foreach (int size in sizes)
            {
                var rates = ours.Select(mode => ComputeComparison.Measure(model, size, batch, steps, mode)).ToArray();
                var torch = PyTorch(python, model, size, batch, steps, threads, torchBf16);
                string theirs = torch is null ? "not run (no torch)" : string.Join(" | ", torch.Select(r => $"{r,12:0.0}"));
                string ratios = torch is null ? "" : $" | {rates[0] / torch[0],24:0.00} | {rates.Max() / torch.Max(),24:0.00}";
                Console.WriteLine($"{model,-10} {size,5} | {string.Join(" | ", rates.Select(r => $"{r,11:0.0}"))} | {theirs}{ratios}");
            }
    }

    private static double[]? PyTorch(string python, string model, int size, int batch, int steps, int threads, bool bf16)
    {
        const string script = """
            import sys, time, contextlib, torch, torchvision
            model, size, batch, steps, threads, bf16 = sys.argv[1], *map(int, sys.argv[2:7])
            torch.set_num_threads(threads)
            def rate(channels_last, autocast):
                torch.manual_seed(1)
                net = getattr(torchvision.models, model)(num_classes=10).train()
                x, y = torch.randn(batch, 3, size, size), torch.arange(batch) % 10
                if channels_last:
                    net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
                opt = torch.optim.AdamW(net.parameters(), 1e-3)
                times = []
                for s in range(steps):
                    t = time.perf_counter()
                    with torch.autocast("cpu", torch.bfloat16) if autocast else contextlib.nullcontext():
                        out = net(x)
                        logits = out.logits if hasattr(out, "logits") else out
                        loss = torch.nn.functional.cross_entropy(logits.float(), y)
                    opt.zero_grad(); loss.backward(); opt.step()
                    if s > 0: times.append(time.perf_counter() - t)
                return batch / sorted(times)[len(times) // 2]
            modes = [(False, False), (True, False)] + ([(False, True), (True, True)] if bf16 else [])
            print(" ".join(f"{rate(cl, ac):.3f}" for cl, ac in modes))
            """;
        string? output = PythonScript.Run(python, script, model, size, batch, steps, threads, bf16 ? 1 : 0);
        return output?.Split(' ').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
    }
}
