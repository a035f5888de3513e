// Training throughput: CnnTrainer.Fit end to end from encoded images vs a bare TorchSharp loop on pre-decoded tensors.
// Same model (resnet18), input size (112 px), batch (32), optimizer (AdamW) and number of images; and, where Python's torch and
// torchvision are installed (Debian: python3-torchvision), (c) the same bare loop in PyTorch on the same machine and threads.
// Usage: dotnet run -c Release --project benchmarks/Cnn.Benchmarks -- [--images N] [--epochs N] [--size PX] [--batch N] [--python PATH]
// With --compute [--model M] [--modes fp32,bf16cl,eval-bf16cl,...]: img/s of one model per compute setting (ComputeComparison.cs).
// With --inference [--model M] [--size PX]: inference img/s of ours, ONNX Runtime and PyTorch side by side (InferenceBenchmark.cs).
// With --bottleneck: frozen-backbone fine-tuning with and without the bottleneck cache (BottleneckBenchmark.cs).
using System.Diagnostics;
using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.MLNet;
using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using Cnn.MLNet.Training;
using Microsoft.ML;
using TorchSharp;
using static TorchSharp.torch;

if (args.Contains("--compute"))
{
    TorchRuntime.EnsureLoaded();
    string modes = ArgumentString("--modes") ?? "fp32,fp32cl,bf16,bf16cl,eval-fp32,eval-fp32cl,eval-bf16,eval-bf16cl";
    foreach (var mode in modes.Split(','))
        Cnn.Benchmarks.ComputeComparison.Run(ArgumentString("--model") ?? "resnet18", Argument("--size", 112), Argument("--batch", 32), Argument("--steps", 12), mode);
    return;
}
if (args.Contains("--inference"))
{
    TorchRuntime.EnsureLoaded();
    Cnn.Benchmarks.InferenceBenchmark.Run(ArgumentString("--model") ?? "resnet18", Argument("--size", 224), Argument("--batch", 32), Argument("--steps", 5),
        ArgumentString("--python") ?? "/usr/bin/python3");
    return;
}
if (args.Contains("--bottleneck"))
{
    Cnn.Benchmarks.BottleneckBenchmark.Run(Argument("--per-class", 100), Argument("--epochs", 5), Argument("--size", 112));
    return;
}

int images = Argument("--images", 512), epochs = Argument("--epochs", 2), size = Argument("--size", 112), batch = Argument("--batch", 32);
TorchRuntime.EnsureLoaded();
Console.WriteLine($"resnet18, {size} px, batch {batch}, {images} images x {epochs} epochs, {Environment.ProcessorCount} cores, torch threads {torch.get_num_threads()}");

// Encoded source images: 160x120 RGB JPEG-like content (smooth gradients + noise) saved as PNG, two classes.
var random = new Random(1);
var rows = Enumerable.Range(0, images).Select(i =>
{
    var pixels = new byte[160 * 120 * 3];
    for (int p = 0; p < pixels.Length; p++) pixels[p] = (byte)((p / 3 % 160) * (i % 2 == 0 ? 1 : 0) + random.Next(64));
    return new EncodedImageRow { Image = ImageEncoder.EncodePng(pixels, 160, 120, 3), Label = i % 2 == 0 ? "a" : "b" };
}).ToList();

// (a) CnnTrainer.Fit from encoded images: decode, resize, augment, batch, prefetch, train.
var ml = new MLContext(seed: 1);
var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(rows)).Transform(ml.Data.LoadFromEnumerable(rows));
var epochRates = new List<double>();
var options = new CnnTrainerOptions
{
    ImageColumnName = "Image", Model = new() { ImageSize = size }, CropPct = 1.0, Epochs = epochs, BatchSize = batch, Augment = true, Seed = 1, Device = CnnDevice.Cpu,
    EpochCompleted = m => epochRates.Add(m.ImagesPerSecond),
};
var clock = Stopwatch.StartNew();
using (CnnTrainer.ResNet18(options).Fit(data)) { }
double fitSeconds = clock.Elapsed.TotalSeconds;
double fitRate = (double)images * epochs / fitSeconds;

// (b) Bare TorchSharp loop on tensors decoded beforehand (no decoding, resizing or augmentation in the loop).
torch.manual_seed(1);
using var model = ModelRegistry.Create("resnet18", new ModelOptions { NumClasses = 2 });
var inputs = randn(images, 3, size, size);
var labels = tensor(Enumerable.Range(0, images).Select(i => (long)(i % 2)).ToArray());
using var optimizer = optim.AdamW(model.parameters(), 1e-3);
model.train();
var bareEpochs = new List<double>();
for (int epoch = 0; epoch < epochs; epoch++)
{
    var epochClock = Stopwatch.StartNew();
    for (int start = 0; start < images; start += batch)
    {
        using var scope = NewDisposeScope();
        long n = Math.Min(batch, images - start);
        var x = inputs.narrow(0, start, n);
        var y = labels.narrow(0, start, n);
        var loss = nn.functional.cross_entropy(model.call(x), y);
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
    }
    bareEpochs.Add(images / epochClock.Elapsed.TotalSeconds);
}
double bareRate = bareEpochs.Average();
double epochRate = epochRates.Average();

Console.WriteLine($"(a) CnnTrainer.Fit end to end      : {fitRate,8:0.0} img/s  ({fitSeconds:0.0} s incl. reading the data view and building the model)");
Console.WriteLine($"    of which training epochs        : {epochRate,8:0.0} img/s  (per epoch: {string.Join(", ", epochRates.Select(r => r.ToString("0.0")))})");
Console.WriteLine($"(b) bare TorchSharp loop            : {bareRate,8:0.0} img/s  (per epoch: {string.Join(", ", bareEpochs.Select(r => r.ToString("0.0")))})");
Console.WriteLine($"ratio (a)/(b): end to end {fitRate / bareRate:0.00}, epochs {epochRate / bareRate:0.00}  (target >= 0.9)");

// (c) The bare loop of (b) in PyTorch, with the same thread count.
string python = ArgumentString("--python") ?? "/usr/bin/python3";
string? pytorch = PyTorchBareLoop(python, images, epochs, size, batch, torch.get_num_threads());
Console.WriteLine(pytorch is null
    ? $"(c) PyTorch bare loop               : not run ({python} with torch and torchvision not found)"
    : $"(c) PyTorch bare loop               : {pytorch}; ratio (b)/(c) {bareRate / double.Parse(pytorch.Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture):0.00}");

static string? PyTorchBareLoop(string python, int images, int epochs, int size, int batch, int threads)
{
    const string script = """
        import sys, time, torch, torchvision
        images, epochs, size, batch, threads = map(int, sys.argv[1:6])
        torch.set_num_threads(threads)
        torch.manual_seed(1)
        model = torchvision.models.resnet18(num_classes=2)
        x_all, y_all = torch.randn(images, 3, size, size), torch.arange(images) % 2
        opt = torch.optim.AdamW(model.parameters(), 1e-3)
        model.train()
        rates = []
        for epoch in range(epochs):
            t = time.perf_counter()
            for start in range(0, images, batch):
                loss = torch.nn.functional.cross_entropy(model(x_all[start:start + batch]), y_all[start:start + batch])
                opt.zero_grad()
                loss.backward()
                opt.step()
            rates.append(images / (time.perf_counter() - t))
        print(f"{sum(rates) / len(rates):.1f} img/s  (torch {torch.__version__}, per epoch: {', '.join(f'{r:.1f}' for r in rates)})")
        """;
    if (!File.Exists(python)) return null;
    string file = Path.Combine(Path.GetTempPath(), $"cnn-bench-{Guid.NewGuid():N}.py");
    File.WriteAllText(file, script);
    try
    {
        var info = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { file, images.ToString(), epochs.ToString(), size.ToString(), batch.ToString(), threads.ToString() }) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd().Trim();
        process.WaitForExit();
        _ = stderr.Result;
        return process.ExitCode == 0 && output.Length > 0 ? output : null;
    }
    finally
    {
        File.Delete(file);
    }
}

int Argument(string name, int fallback) => int.TryParse(ArgumentString(name), out int v) && v > 0 ? v : fallback;

string? ArgumentString(string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}
