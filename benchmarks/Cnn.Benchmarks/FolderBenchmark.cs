using System.Diagnostics;
using System.Globalization;
using Cnn.MLNet;
using Cnn.MLNet.Data;
using Microsoft.ML;

namespace Cnn.Benchmarks;

/// <summary>
/// Training end to end from a folder of JPEG files, side by side in one run: <c>CnnTrainer.Fit</c> on the folder (with the
/// reference arithmetic, float32 contiguous, and with Auto precision and memory format) against the standard PyTorch recipe, torchvision's <c>ImageFolder</c> with
/// <c>DataLoader(num_workers = cores)</c> (float32, and autocast bfloat16 channels-last where the CPU has native bfloat16).
/// Same files, model (resnet18 from scratch), input size, batch, optimizer (AdamW 1e-3), augmentation (random resized crop of
/// 0.08–1 of the area + horizontal flip) and threads. "End to end" counts from scanning the folder to the end of the last
/// epoch (for PyTorch: after its imports); "epochs" is the training loop's own rate.
/// Usage: dotnet run -c Release --project benchmarks/Cnn.Benchmarks -- --folder [--images 2048] [--epochs 2] [--size 112] [--batch 32]
/// </summary>
internal static class FolderBenchmark
{
    public static void Run(int images, int epochs, int size, int batch, string python)
    {
        string root = Path.Combine(Path.GetTempPath(), $"cnn-bench-folder-{Guid.NewGuid():N}");
        try
        {
            if (PythonScript.Run(python, WriteJpegs, root, images, 10, 160) is null)
            {
                Console.WriteLine($"not run: {python} with Pillow is needed to write the JPEG folder (and torch, torchvision for the comparison)");
                return;
            }
            int threads = TorchSharp.torch.get_num_threads();
            Console.WriteLine($"resnet18 from scratch on {images} JPEGs (160x160, 10 class folders), {size} px, batch {batch}, {epochs} epochs, " +
                              $"AdamW, random resized crop + flip, {threads} threads, {Environment.ProcessorCount} cores");
            var rows = new List<(string Name, double EndToEnd, double Epochs)>();
            foreach (var (name, precision, format) in new[]
            {
                ("ours, float32 contiguous", CnnPrecision.Float32, CnnMemoryFormat.Contiguous),
                ("ours, Auto", CnnPrecision.Auto, CnnMemoryFormat.Auto),
            })
            {
                var (endToEnd, epochRate, compute) = Ours(root, images, epochs, size, batch, precision, format);
                rows.Add(($"{name} ({compute})", endToEnd, epochRate));
            }
            bool bf16 = Cnn.Backbones.Compute.CpuFeatures.BFloat16InstructionSets.Count > 0;   // PyTorch's own oneDNN
            foreach (var (name, mode) in bf16
                         ? new[] { ("PyTorch ImageFolder + DataLoader, float32", "fp32"), ("PyTorch ImageFolder + DataLoader, autocast bf16 channels-last", "bf16cl") }
                         : new[] { ("PyTorch ImageFolder + DataLoader, float32", "fp32") })
            {
                string? output = PythonScript.Run(python, PyTorchLoop, root, epochs, size, batch, threads, Environment.ProcessorCount, mode);
                if (output is null)
                {
                    Console.WriteLine($"{name}: not run ({python} with torch and torchvision not found)");
                    continue;
                }
                var values = output.Split(' ').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
                rows.Add((name, values[0], values[1]));
            }
            double reference = rows.FirstOrDefault(r => r.Name.Contains("PyTorch") && r.Name.EndsWith("float32", StringComparison.Ordinal)).EndToEnd;
            Console.WriteLine($"{"run",-72} | {"end to end",10} | {"epochs",8} | {"end to end / PyTorch float32",28}");
            foreach (var (name, endToEnd, epochRate) in rows)
                Console.WriteLine($"{name,-72} | {endToEnd,10:0.0} | {epochRate,8:0.0} | {(reference > 0 ? (endToEnd / reference).ToString("0.00", CultureInfo.InvariantCulture) : "-"),28}");
            Console.WriteLine("(img/s; target: ours >= 1.3x PyTorch float32 end to end)");
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    private static (double EndToEnd, double Epochs, string Compute) Ours(string root, int images, int epochs, int size, int batch,
        CnnPrecision precision, CnnMemoryFormat format)
    {
        var ml = new MLContext(seed: 1);
        var compute = new ComputeLog(ml);
        var rates = new List<double>();
        var clock = Stopwatch.StartNew();
        var dataset = ImageFolderDataset.Scan(root);
        var data = ImageDataViews.MapLabelsToKeys(ml, dataset.ClassNames).Fit(ImageDataViews.ToDataView(ml, dataset))
            .Transform(ImageDataViews.ToDataView(ml, dataset));
        var options = new CnnTrainerOptions
        {
            Model = new() { ImageSize = size }, Epochs = epochs, BatchSize = batch, LearningRate = 1e-3, Augment = true, AugmentMinScale = 0.08,
            Seed = 1, Device = CnnDevice.Cpu, EpochCompleted = m => rates.Add(m.ImagesPerSecond), Precision = precision, MemoryFormat = format,
        };
        using (CnnTrainer.ResNet18(options, ml).Fit(data)) { }
        return ((double)images * epochs / clock.Elapsed.TotalSeconds, rates.Average(), compute.Description);
    }

    // Writes `count` JPEGs of size x size in `classes` folders: smooth colour gradients (a hue per class) plus noise.
    private const string WriteJpegs = """
        import os, sys, random
        from PIL import Image
        root, count, classes, size = sys.argv[1], *map(int, sys.argv[2:5])
        random.seed(1)
        for c in range(classes):
            os.makedirs(os.path.join(root, f"class{c:02d}"), exist_ok=True)
        for i in range(count):
            c = i % classes
            base = Image.linear_gradient("L").resize((size, size)).rotate(36 * c)
            noise = Image.effect_noise((size, size), 40 + 4 * c)
            img = Image.merge("RGB", (base, noise, Image.blend(base, noise, 0.5)))
            img.save(os.path.join(root, f"class{c:02d}", f"{i:05d}.jpg"), quality=90)
        print(count)
        """;

    // torchvision's ImageFolder + DataLoader recipe; prints end-to-end and epoch img/s.
    private const string PyTorchLoop = """
        import sys, time, contextlib, torch, torchvision
        from torchvision import transforms as T
        root = sys.argv[1]
        epochs, size, batch, threads, workers = map(int, sys.argv[2:7])
        mode = sys.argv[7]
        torch.set_num_threads(threads)
        torch.manual_seed(1)
        start = time.perf_counter()
        tf = T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.ToTensor(),
                        T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
        data = torchvision.datasets.ImageFolder(root, tf)
        loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, num_workers=workers)
        model = torchvision.models.resnet18(num_classes=len(data.classes)).train()
        cl = mode == "bf16cl"
        if cl: model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), 1e-3)
        rates = []
        for epoch in range(epochs):
            t, n = time.perf_counter(), 0
            for x, y in loader:
                if cl: x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast("cpu", torch.bfloat16) if cl else contextlib.nullcontext():
                    loss = torch.nn.functional.cross_entropy(model(x).float(), y)
                opt.zero_grad(); loss.backward(); opt.step()
                n += len(y)
            rates.append(n / (time.perf_counter() - t))
        total = time.perf_counter() - start
        print(f"{len(data) * epochs / total:.3f} {sum(rates) / len(rates):.3f}")
        """;
}
