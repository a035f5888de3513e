using System.Diagnostics;
using System.Globalization;
using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.Backbones.Optimizers;
using Cnn.MLNet;
using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using Cnn.MLNet.Training;
using Microsoft.ML;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Benchmarks;

/// <summary>
/// What the data path costs: (a) <c>CnnTrainer.Fit</c> end to end from encoded PNG images (decode, resize, augment, batch,
/// prefetch, train) against (b) a bare TorchSharp loop over the same backbone on tensors made beforehand, and (c) the same bare
/// loop in PyTorch where Debian's python3-torchvision is installed. Same model (resnet18), input size, batch, optimizer (AdamW),
/// threads and compute: the trainer runs in float32 contiguous (<c>--precision float32</c>, also when left out), or with
/// <c>--precision auto</c> with Auto precision and memory format; (b) and (c) compute as the trainer resolved (PyTorch under <c>torch.autocast</c> and
/// channels-last where that is bfloat16 channels-last). Both loops run warm: a first Fit over two batches sets up libtorch's
/// kernels and .NET's compiled code for the run's shapes before (a), as (a) did for (b) when (b) ran after it cold.
/// </summary>
internal static class DataPathBenchmark
{
    public static void Run(int images, int epochs, int size, int batch, int rounds, string precision, string python)
    {
        Console.WriteLine($"resnet18, {size} px, batch {batch}, {images} images x {epochs} epochs, {Environment.ProcessorCount} cores, torch threads {torch.get_num_threads()}");

        // Encoded source images: 160x120 RGB (smooth gradients + noise) saved as PNG, two classes.
        var random = new Random(1);
        var rows = Enumerable.Range(0, images).Select(i =>
        {
            var pixels = new byte[160 * 120 * 3];
            for (int p = 0; p < pixels.Length; p++) pixels[p] = (byte)((p / 3 % 160) * (i % 2 == 0 ? 1 : 0) + random.Next(64));
            return new EncodedImageRow { Image = ImageEncoder.EncodePng(pixels, 160, 120, 3), Label = i % 2 == 0 ? "a" : "b" };
        }).ToList();

        var ml = new MLContext(seed: 1);
        var compute = new ComputeLog(ml);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(rows)).Transform(ml.Data.LoadFromEnumerable(rows));
        CnnTrainerOptions Options(int runEpochs, Action<EpochMetrics>? epochCompleted)
        {
            var options = new CnnTrainerOptions
            {
                ImageColumnName = "Image", Model = new() { ImageSize = size }, CropPct = 1.0, Epochs = runEpochs, BatchSize = batch, Augment = true, Seed = 1,
                Device = CnnDevice.Cpu, EpochCompleted = epochCompleted,
            };
            (options.Precision, options.MemoryFormat) = precision == "auto"
                ? (CnnPrecision.Auto, CnnMemoryFormat.Auto)
                : (CnnPrecision.Float32, CnnMemoryFormat.Contiguous);
            return options;
        }

        // Warm-up: one Fit over two batches with the same options, so that (a) starts as (b), which runs after it, does: with
        // libtorch's kernels and .NET's compiled code for these shapes already set up (a cost a process pays once, not the data path's).
        var warmClock = Stopwatch.StartNew();
        using (CnnTrainer.ResNet18(Options(1, null), ml).Fit(ml.Data.TakeRows(data, 2 * batch))) { }
        Console.WriteLine($"warm-up: Fit over {2 * batch} images in {warmClock.Elapsed.TotalSeconds:0.0} s (not counted below)");

        // (b) Bare TorchSharp loop on tensors made beforehand (no decoding, resizing or augmentation in the loop), in the compute
        // the warm-up's fit resolved; its epochs run both before and after (a), so that a machine whose speed drifts (a shared
        // virtual machine) weighs on (a) and (b) alike.
        torch.manual_seed(1);
        using var model = ModelRegistry.Create("resnet18", new ModelOptions { NumClasses = 2 });
        model.Compute = compute.Settings;
        using var inputs = randn(images, 3, size, size);
        using var labels = tensor(Enumerable.Range(0, images).Select(i => (long)(i % 2)).ToArray());
        using var optimizer = new HeldScalarAdamW(model.parameters(), 1e-3);
        model.train();
        void BareStep(int start)
        {
            using var scope = NewDisposeScope();
            long n = Math.Min(batch, images - start);
            var loss = nn.functional.cross_entropy(model.call(inputs.narrow(0, start, n)), labels.narrow(0, start, n));
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
        }
        (double Rate, long Faults, double CpuSeconds) BareEpoch()
        {
            BareStep(0); // untimed: the heap (a) handed back to the kernel when its run ended is laid out again before (b)'s clock starts
            var epochClock = Stopwatch.StartNew();
            long faults = ProcessMemory.MinorFaults();
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            for (int start = 0; start < images; start += batch) BareStep(start);
            return (images / epochClock.Elapsed.TotalSeconds, ProcessMemory.MinorFaults() - faults, (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds);
        }

        // (a) CnnTrainer.Fit from encoded images, with a timeline of its log, bracketed by one epoch of (b) before and one after;
        // each round gives its own ratios, and the verdicts take the median round's.
        int batchesPerEpoch = (images + batch - 1) / batch;
        string PerBatch(IEnumerable<long> faults) => string.Join(", ", faults.Select(f => (f / (double)batchesPerEpoch).ToString("0", CultureInfo.InvariantCulture)));
        var epochRatios = new List<double>();
        var endToEndRatios = new List<double>();
        double lastBareRate = 0;
        for (int round = 1; round <= rounds; round++)
        {
            var before = BareEpoch();
            var epochRates = new List<double>();
            var epochFaults = new List<long>();
            var stages = new List<string>();
            var clock = Stopwatch.StartNew();
            void Logged(object? sender, Microsoft.ML.LoggingEventArgs e)
            {
                if (e.Kind <= Microsoft.ML.Runtime.ChannelMessageKind.Info && e.Source == "CnnTrainer") stages.Add($"  {clock.Elapsed.TotalSeconds,5:0.00} s  {e.Message}");
            }
            long fitFaults = ProcessMemory.MinorFaults();
            var fitCpu = Process.GetCurrentProcess().TotalProcessorTime;
            var epochCpu = new List<double>();
            void EpochCompleted(EpochMetrics metrics)
            {
                epochRates.Add(metrics.ImagesPerSecond);
                long now = ProcessMemory.MinorFaults();
                epochFaults.Add(now - fitFaults);
                fitFaults = now;
                var cpuNow = Process.GetCurrentProcess().TotalProcessorTime;
                epochCpu.Add((cpuNow - fitCpu).TotalSeconds);
                fitCpu = cpuNow;
            }
            ml.Log += Logged;
            using (CnnTrainer.ResNet18(Options(epochs, EpochCompleted), ml).Fit(data)) { }
            ml.Log -= Logged;
            stages.Add($"  {clock.Elapsed.TotalSeconds,5:0.00} s  Fit returned");
            double fitSeconds = clock.Elapsed.TotalSeconds;
            var after = BareEpoch();
            double fitRate = (double)images * epochs / fitSeconds, epochRate = epochRates.Average(), bareRate = (before.Rate + after.Rate) / 2;
            epochRatios.Add(epochRate / bareRate);
            endToEndRatios.Add(fitRate / bareRate);
            lastBareRate = bareRate;
            if (round == 1)
            {
                Console.WriteLine($"compute: {compute.Description}");
                Console.WriteLine("(a)'s timeline, round 1:");
                stages.ForEach(Console.WriteLine);
            }
            Console.WriteLine($"round {round}: (a) CnnTrainer.Fit end to end {fitRate:0.0} img/s ({fitSeconds:0.0} s incl. reading the data view and building the model), " +
                              $"epochs {string.Join(", ", epochRates.Select(r => r.ToString("0.0", CultureInfo.InvariantCulture)))}; " +
                              $"(b) bare TorchSharp loop before and after {before.Rate:0.0}, {after.Rate:0.0}; " +
                              $"(a)/(b) epochs {epochRate / bareRate:0.00}, end to end {fitRate / bareRate:0.00}");
            Console.WriteLine($"         per epoch, CPU seconds (all threads): (a) {string.Join(", ", epochCpu.Select(c => c.ToString("0.00", CultureInfo.InvariantCulture)))}, " +
                              $"(b) {before.CpuSeconds:0.00}, {after.CpuSeconds:0.00}; page faults per batch (fresh memory touched): (a) {PerBatch(epochFaults)}, " +
                              $"(b) {PerBatch([before.Faults, after.Faults])} ((a)'s first epoch also counts decoding the images and building the model)");
        }
        double epochRatio = Median(epochRatios), endToEndRatio = Median(endToEndRatios);
        Console.WriteLine($"native heap: {TorchRuntime.NativeHeapStatus}");
        Console.WriteLine($"ratio (a)/(b), median of {rounds} rounds: epochs {epochRatio:0.00}, end to end {endToEndRatio:0.00}");
        Profile(rows, size, batch, lastBareRate);

        // (c) The bare loop of (b) in PyTorch, with the same thread count and compute.
        string? pytorch = PythonScript.Run(python, PyTorchBareLoop, images, epochs, size, batch, torch.get_num_threads(), compute.PyTorchMode);
        Console.WriteLine(pytorch is null
            ? $"(c) PyTorch bare loop               : not run ({python} with torch and torchvision not found)"
            : $"(c) PyTorch bare loop               : {pytorch}; ratio (b)/(c) {lastBareRate / double.Parse(pytorch.Split(' ')[0], CultureInfo.InvariantCulture):0.00}");
        Console.WriteLine(Verdict.AtLeast($"data path {size} px, epochs: (a)/(b)", epochRatio, 0.95));
        Console.WriteLine(Verdict.AtLeast($"data path {size} px, end to end: (a)/(b)", endToEndRatio, 0.9));
    }

    /// <summary>
    /// Where the data path's time goes: the CPU time per batch of each of its parts, measured here on one thread over the same
    /// images (decode, the augmentation's crop + resize + flip + normalisation, the batch's copy into a tensor), beside the CPU
    /// time of one training step of the bare loop (its wall time × libtorch's threads), which the parts share the cores with.
    /// </summary>
    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static void Profile(IReadOnlyList<EncodedImageRow> rows, int size, int batch, double bareRate)
    {
        var samples = rows.Select((r, i) => ImageSample.FromEncoded(r.Image, i % 2, $"row {i}")).ToList();
        var preprocessor = new ImagePreprocessor(PreprocessOptions.ImageNet(size, 1.0));
        var images = samples.Select(s => s.Decode(3)).ToList();
        var decode = Stopwatch.StartNew();
        var scratch = new DecodedImage();
        foreach (var sample in samples) sample.Decode(3, into: scratch);
        double decodeMs = decode.Elapsed.TotalMilliseconds / samples.Count * batch;
        var destination = new float[preprocessor.SampleLength];
        var augment = Stopwatch.StartNew();
        for (int i = 0; i < images.Count; i++) preprocessor.PreprocessForTraining(images[i], new Random(i), destination);
        double augmentMs = augment.Elapsed.TotalMilliseconds / images.Count * batch;
        var pixels = new float[batch * preprocessor.SampleLength];
        var copy = Stopwatch.StartNew();
        for (int k = 0; k < 20; k++)
        {
            using var t = torch.empty([batch, 3, size, size]);
            t.data<float>().CopyFrom(pixels);
        }
        double copyMs = copy.Elapsed.TotalMilliseconds / 20;
        double stepCpuMs = batch / bareRate * 1000 * torch.get_num_threads();
        Console.WriteLine($"profile, CPU ms per batch of {batch} on one thread: decode {decodeMs:0.0}, augment (crop, resize, flip, normalise) {augmentMs:0.0}, " +
                          $"copy into a tensor {copyMs:0.0}; one bare training step {stepCpuMs:0.0} CPU ms ({torch.get_num_threads()} threads), " +
                          $"so preparing a batch costs {(decodeMs + augmentMs + copyMs) / stepCpuMs:P0} of a step's CPU time (decoded once and kept: {(augmentMs + copyMs) / stepCpuMs:P0})");
    }

    private const string PyTorchBareLoop = """
        import sys, time, contextlib, torch, torchvision
        images, epochs, size, batch, threads = map(int, sys.argv[1:6])
        mode = sys.argv[6]
        torch.set_num_threads(threads)
        torch.manual_seed(1)
        model = torchvision.models.resnet18(num_classes=2)
        x_all, y_all = torch.randn(images, 3, size, size), torch.arange(images) % 2
        if mode.endswith("cl"):
            model, x_all = model.to(memory_format=torch.channels_last), x_all.contiguous(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), 1e-3)
        model.train()
        rates = []
        for epoch in range(epochs):
            t = time.perf_counter()
            for start in range(0, images, batch):
                with torch.autocast("cpu", torch.bfloat16) if mode.startswith("bf16") else contextlib.nullcontext():
                    logits = model(x_all[start:start + batch])
                loss = torch.nn.functional.cross_entropy(logits.float(), y_all[start:start + batch])
                opt.zero_grad()
                loss.backward()
                opt.step()
            rates.append(images / (time.perf_counter() - t))
        print(f"{sum(rates) / len(rates):.1f} img/s  (torch {torch.__version__}, {mode}, per epoch: {', '.join(f'{r:.1f}' for r in rates)})")
        """;
}
