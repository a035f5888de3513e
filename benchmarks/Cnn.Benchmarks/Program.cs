// The benchmarks of this project, one program; each mode prints its figures side by side in one run.
// Default: the data path, CnnTrainer.Fit end to end from encoded images vs a bare TorchSharp loop on pre-decoded tensors (DataPathBenchmark.cs).
// Usage: dotnet run -c Release --project benchmarks/Cnn.Benchmarks -- [--images N] [--epochs N] [--size PX] [--batch N] [--rounds N] [--precision float32|auto] [--python PATH]
// With --compute [--model M] [--channels N] [--modes fp32,bf16cl,eval-bf16cl,...]: img/s of one model per compute setting (ComputeComparison.cs).
// With --training [--models M,M] [--sizes PX,PX] [--batch N] [--steps N]: training img/s of ours and PyTorch per compute setting, the
// step-phase profile, peak memory (a child process each, --training-child) and a verdict per goal (TrainingBenchmark.cs).
// With --inference [--models M,M] [--size PX]: inference img/s of ours (the default included), ONNX Runtime and PyTorch side by side, a verdict per model (InferenceBenchmark.cs).
// With --bottleneck: frozen-backbone fine-tuning with and without the bottleneck cache (BottleneckBenchmark.cs).
// With --folder [--images N] [--epochs N] [--size PX]: end to end from a JPEG folder against PyTorch's ImageFolder + DataLoader (FolderBenchmark.cs).
// With --growth [--counts N,N] [--batches N,N]: epoch time against images and peak memory against batch size (GrowthBenchmark.cs).
// With --optimizer [--models M,M] [--steps N]: ms per optimizer step (AdamW, SGD momentum) of ours per-tensor, ours fused and PyTorch's torch.optim (OptimizerBenchmark.cs).
// With --numerics [--model M] [--size PX] [--channels N] [--batch N]: each compute setting's training pass against float64 here (NumericsCheck.cs).
using Cnn.Backbones.Native;
using TorchSharp;

if (args.Contains("--compute"))
{
    TorchRuntime.EnsureLoaded();
    string modes = ArgumentString("--modes") ?? "fp32,fp32cl,bf16,bf16cl,eval-fp32,eval-fp32cl,eval-bf16,eval-bf16cl";
    foreach (var mode in modes.Split(','))
        Cnn.Benchmarks.ComputeComparison.Run(ArgumentString("--model") ?? "resnet18", Argument("--size", 112), Argument("--batch", 32), Argument("--steps", 12), mode, Argument("--channels", 3));
    return;
}
if (args.Contains("--optimizer"))
{
    TorchRuntime.EnsureLoaded();
    Cnn.Benchmarks.OptimizerBenchmark.Run((ArgumentString("--models") ?? "resnet18,resnet50").Split(','), Argument("--steps", 10),
        ArgumentString("--python") ?? "/usr/bin/python3");
    return;
}
if (args.Contains("--numerics"))
{
    TorchRuntime.EnsureLoaded();
    Cnn.Benchmarks.NumericsCheck.Run(ArgumentString("--model") ?? "resnet18", Argument("--size", 112), Argument("--channels", 3), Argument("--batch", 32),
        ArgumentString("--python") ?? "/usr/bin/python3");
    return;
}
if (args.Contains("--training"))
{
    TorchRuntime.EnsureLoaded();
    Cnn.Benchmarks.TrainingBenchmark.Run((ArgumentString("--models") ?? "resnet18,resnet50").Split(','),
        (ArgumentString("--sizes") ?? "112,224").Split(',').Select(int.Parse).ToArray(), Argument("--batch", 32), Argument("--steps", 5),
        ArgumentString("--python") ?? "/usr/bin/python3");
    return;
}
if (args.Contains(Cnn.Benchmarks.OursTrainingRun.Flag))
{
    TorchRuntime.EnsureLoaded();
    int at = Array.IndexOf(args, Cnn.Benchmarks.OursTrainingRun.Flag);
    Cnn.Benchmarks.OursTrainingRun.Run(args[at + 1], int.Parse(args[at + 2]), int.Parse(args[at + 3]), int.Parse(args[at + 4]), args[at + 5]);
    return;
}
if (args.Contains("--inference"))
{
    TorchRuntime.EnsureLoaded();
    Cnn.Benchmarks.InferenceBenchmark.Run((ArgumentString("--models") ?? ArgumentString("--model") ?? "resnet18").Split(','), Argument("--size", 224), Argument("--batch", 32), Argument("--steps", 5),
        ArgumentString("--python") ?? "/usr/bin/python3");
    return;
}
if (args.Contains("--folder"))
{
    TorchRuntime.EnsureLoaded();
    Cnn.Benchmarks.FolderBenchmark.Run(Argument("--images", 2048), Argument("--epochs", 2), Argument("--size", 112), Argument("--batch", 32),
        ArgumentString("--python") ?? "/usr/bin/python3");
    return;
}
if (args.Contains("--growth"))
{
    TorchRuntime.EnsureLoaded();
    Cnn.Benchmarks.GrowthBenchmark.Run((ArgumentString("--counts") ?? "1000,4000,16000").Split(',').Select(int.Parse).ToArray(),
        (ArgumentString("--batches") ?? "16,32,64,128,256").Split(',').Select(int.Parse).ToArray());
    return;
}
if (args.Contains("--growth-child"))
{
    TorchRuntime.EnsureLoaded();
    int at = Array.IndexOf(args, "--growth-child");
    Cnn.Benchmarks.GrowthBenchmark.RunChild(args[at + 1], int.Parse(args[at + 2]), int.Parse(args[at + 3]), int.Parse(args[at + 4]), int.Parse(args[at + 5]));
    return;
}
if (args.Contains("--bottleneck"))
{
    Cnn.Benchmarks.BottleneckBenchmark.Run(Argument("--per-class", 100), Argument("--epochs", 5), Argument("--size", 112));
    return;
}

TorchRuntime.EnsureLoaded();
Cnn.Benchmarks.DataPathBenchmark.Run(Argument("--images", 512), Argument("--epochs", 2), Argument("--size", 112), Argument("--batch", 32), Argument("--rounds", 3),
    ArgumentString("--precision") ?? "float32", ArgumentString("--python") ?? "/usr/bin/python3");

int Argument(string name, int fallback) => int.TryParse(ArgumentString(name), out int v) && v > 0 ? v : fallback;

string? ArgumentString(string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}
