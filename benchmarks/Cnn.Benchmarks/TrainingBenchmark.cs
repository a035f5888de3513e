using Cnn.Backbones.Compute;

namespace Cnn.Benchmarks;

/// <summary>
/// Training img/s side by side in one run, per model and input size, on random tensors (the network's own cost, no data path):
/// ours in float32 (a bare TorchSharp loop over our backbone, as <see cref="ComputeComparison"/> runs it), channels-last, and
/// bfloat16 (with and without channels-last) where the CPU has native bfloat16 (the trainer's default is float32 channels-last
/// at 64 px and more; Auto precision picks bfloat16 channels-last where the CPU has it); PyTorch's fp32, fp32
/// channels-last and, where native, <c>torch.autocast("cpu", bfloat16)</c> with and without channels-last. Same batch, threads,
/// optimizer (AdamW) and loss; each figure is the median of the timed steps after a warm-up step.
/// Then, per model and size: the step-phase profile of our best setting (bfloat16 channels-last where native, else float32; a
/// fresh child process, <see cref="OursTrainingRun"/>) beside PyTorch's best autocast setting (its best float32 one where the
/// CPU has no bfloat16); the peak resident memory of a training run of ours and of PyTorch at the same setting, a fresh process
/// each; and one verdict line per goal.
/// Usage: dotnet run -c Release --project benchmarks/Cnn.Benchmarks -- --training [--models resnet18,resnet50] [--sizes 112,224] [--batch 32] [--steps 5]
/// </summary>
internal static class TrainingBenchmark
{
    private const double SpeedGoal = 1.0, MemoryGoal = 1.1;

    public static void Run(IReadOnlyList<string> models, IReadOnlyList<int> sizes, int batch, int steps, string python)
    {
        steps = Math.Max(steps, 2);
        // Our bfloat16 needs it in libtorch's oneDNN (not capped, see TorchRuntime.OneDnnStatus); PyTorch's only in the CPU.
        bool bf16 = CpuFeatures.HasNativeBFloat16, torchBf16 = CpuFeatures.BFloat16InstructionSets.Count > 0;
        int threads = TorchSharp.torch.get_num_threads();
        Console.WriteLine($"training img/s, batch {batch}, {threads} threads, median of {steps - 1} steps after a warm-up; native bfloat16: " +
                          $"{(bf16 ? "yes" : $"no (our bfloat16 rows skipped: emulated, far slower; oneDNN: {Cnn.Backbones.Native.TorchRuntime.OneDnnStatus})")}");
        string[] ours = bf16 ? ["fp32", "fp32cl", "bf16", "bf16cl"] : ["fp32", "fp32cl"];
        Console.WriteLine($"{"model",-10} {"size",5} | {string.Join(" | ", ours.Select(m => $"ours {m,-6}"))} | PyTorch fp32 | PyTorch fp32 cl{(torchBf16 ? " | PyTorch autocast | autocast cl" : "")} | ours fp32 / PyTorch fp32 | best ours / best PyTorch");
        var rows = new List<Row>();
        foreach (var model in models)
            foreach (int size in sizes)
            {
                var rates = ours.Select(mode => ComputeComparison.Measure(model, size, batch, steps, mode)).ToArray();
                var torch = PyTorchTraining.Measure(python, model, size, batch, steps, threads, torchBf16);
                string theirs = torch is null ? "not run (no torch)" : string.Join(" | ", torch.Select(r => $"{r,12:0.0}"));
                string ratios = torch is null ? "" : $" | {rates[0] / torch[0],24:0.00} | {rates.Max() / torch.Max(),24:0.00}";
                Console.WriteLine($"{model,-10} {size,5} | {string.Join(" | ", rates.Select(r => $"{r,11:0.0}"))} | {theirs}{ratios}");
                rows.Add(new(model, size, ours.Zip(rates).ToDictionary(p => p.First, p => p.Second), torch));
            }

        // Ours at its best setting; PyTorch's peak memory at the setting that computes alike (bf16cl: autocast channels-last).
        string oursBest = bf16 ? "bf16cl" : "fp32";
        int torchAlike = bf16 ? 3 : 0;
        string torchKind = torchBf16 ? "autocast" : "fp32";
        Console.WriteLine();
        Console.WriteLine($"step-phase profile, ms per step (median of {steps - 1} timed steps), ours {oursBest} (a fresh process) beside PyTorch's best {torchKind} setting:");
        Console.WriteLine("  total: the whole step; forward: input to float32 logits, of which BN = the BatchNorm layers' forward and casts = the");
        Console.WriteLine("    mixed-precision casts of inputs, weights and biases to bfloat16 (ours: forward pre/post hooks on every BatchNorm module");
        Console.WriteLine("    and a clock around our convolution and linear layers' casts; PyTorch: torch.profiler's CPU time of aten::batch_norm,");
        Console.WriteLine("    casts inside it excluded, and of aten::_to_copy, over two extra profiled forward passes); backward: loss.backward();");
        Console.WriteLine("  optimizer: AdamW's step(); zero_grad+host: the rest (cross-entropy, zero_grad, loss.item(), freeing the step's tensors).");
        Console.WriteLine("  Each side is a fresh process (PyTorch's right after ours, so both meet the same machine), which also gives the peak memory.");
        Console.WriteLine($"{"model",-10} {"size",5} | {"setting",-20} | {"total",8} | {"forward",8} | {"(BN)",8} | {"(casts)",8} | {"backward",8} | {"optimizer",9} | {"zero_grad+host",14}");
        var memory = new List<string>();
        var speedVerdicts = new List<string>();
        var memoryVerdicts = new List<string>();
        foreach (var row in rows)
        {
            // Ours, then PyTorch right after it (so both meet the same machine): its best setting profiled, and the alike one's memory.
            var (phases, peak, start) = OursTrainingRun.InChild(row.Model, row.Size, batch, steps, oursBest);
            PrintPhases(row, $"ours {oursBest}", phases);
            int? best = row.TorchRates is null ? null : (torchBf16 ? [2, 3] : new[] { 0, 1 }).MaxBy(i => row.TorchRates[i]);
            var profiled = best is { } b ? PyTorchTraining.MeasureOne(python, row.Model, row.Size, batch, steps, threads, b, profiled: true) : null;
            if (profiled?.Phases is { } theirs)
            {
                PrintPhases(row, $"PyTorch {PyTorchTraining.Modes[best!.Value]}", theirs);
                var gap = new StepPhases(phases.Total - theirs.Total, phases.Forward - theirs.Forward, phases.BatchNorm - theirs.BatchNorm,
                    phases.Casts - theirs.Casts, phases.Backward - theirs.Backward, phases.Optimizer - theirs.Optimizer, phases.Host - theirs.Host);
                PrintPhases(row, "ours - PyTorch", gap);
                var largest = gap.Parts().MaxBy(p => p.Milliseconds);
                Console.WriteLine($"{"",16} | largest gap: {largest.Name} {largest.Milliseconds:+0.0;-0.0} ms per step ({100 * largest.Milliseconds / theirs.Total:0}% of PyTorch's step)");
            }

            var torchMemory = best == torchAlike ? profiled
                : row.TorchRates is null ? null : PyTorchTraining.MeasureOne(python, row.Model, row.Size, batch, steps, threads, torchAlike, profiled: false);
            string alike = PyTorchTraining.Modes[torchAlike];
            if (torchMemory is { } m)
            {
                double ratio = peak / m.PeakMegabytes;
                memory.Add($"{row.Model,-10} {row.Size,5} | {$"{oursBest} / {alike}",-20} | {peak,12:0} | {start,10:0} | {m.PeakMegabytes,15:0} | {m.StartMegabytes,10:0} | {ratio,12:0.00}");
                memoryVerdicts.Add(Verdict.AtMost($"peak memory {row.Model} {row.Size} px: ours {oursBest} {peak:0} MB / PyTorch {alike} {m.PeakMegabytes:0} MB", ratio, MemoryGoal));
            }
            else
            {
                memory.Add($"{row.Model,-10} {row.Size,5} | {oursBest,-20} | {peak,12:0} | {start,10:0} | not run (no torch)");
                memoryVerdicts.Add($"verdict: peak memory {row.Model} {row.Size} px: not measured (no torch)");
            }

            speedVerdicts.Add(SpeedVerdict(row, torchBf16));
        }

        Console.WriteLine();
        Console.WriteLine($"peak resident memory (VmHWM, MB) of a training run ({steps} steps: warm-up and timed), one fresh process each, same model, batch and size;");
        Console.WriteLine("  'at start' is the resident set before the model is built (runtime, libtorch / torch and torchvision loaded)");
        Console.WriteLine($"{"model",-10} {"size",5} | {"ours / PyTorch",-20} | {"ours peak MB",12} | {"(at start)",10} | {"PyTorch peak MB",15} | {"(at start)",10} | {"ours/PyTorch",12}");
        memory.ForEach(Console.WriteLine);
        Console.WriteLine();
        Console.WriteLine("verdicts:");
        speedVerdicts.ForEach(Console.WriteLine);
        memoryVerdicts.ForEach(Console.WriteLine);
    }

    // Ours at our fastest setting against PyTorch's fastest autocast setting.
    private static string SpeedVerdict(Row row, bool torchBf16)
    {
        var (oursMode, oursRate) = row.OursRates.MaxBy(p => p.Value);
        string head = $"training {row.Model} {row.Size} px: ours {oursMode} {oursRate:0.0} img/s";
        if (row.TorchRates is not { Length: 4 } t || !torchBf16)
            return $"verdict: {head}; PyTorch autocast not measured ({(row.TorchRates is null ? "no torch" : "no native bfloat16 in this CPU")})";
        int best = t[3] > t[2] ? 3 : 2;
        double ratio = oursRate / t[best];
        return Verdict.AtLeast($"{head} / PyTorch best autocast ({PyTorchTraining.Modes[best]}) {t[best]:0.0} img/s", ratio, SpeedGoal);
    }

    private static void PrintPhases(Row row, string setting, StepPhases p) =>
        Console.WriteLine($"{row.Model,-10} {row.Size,5} | {setting,-20} | {p.Total,8:0.0} | {p.Forward,8:0.0} | {p.BatchNorm,8:0.0} | {p.Casts,8:0.0} | {p.Backward,8:0.0} | {p.Optimizer,9:0.0} | {p.Host,14:0.0}");

    private sealed record Row(string Model, int Size, Dictionary<string, double> OursRates, double[]? TorchRates);
}
