using Cnn.Backbones.Compute;
using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Benchmarks;

/// <summary>
/// How far each compute setting's training pass lies from float64, on this machine's libtorch: one training-mode forward and
/// backward of a seeded network on one seeded batch, in float32, float32 channels-last, bfloat16 and bfloat16 channels-last,
/// against the same network in float64; then PyTorch's own float32 and <c>torch.autocast("cpu", bfloat16)</c> passes against its
/// float64 in the same setting (torchvision's model, same seed, where Debian's python3-torchvision is installed). Prints the
/// logits' largest deviation relative to the largest logit, the parameter gradient's relative error norm and its cosine with
/// the float64 gradient. Float32 should sit near 1e-5 and a cosine of 1; bfloat16 shows its rounding, as autocast does. A
/// float32 row far from that, or bfloat16 rows far from autocast's, mean the kernels are wrong here (README, <i>Native
/// runtime</i>).
/// Usage: dotnet run -c Release --project benchmarks/Cnn.Benchmarks -- --numerics [--model M] [--size PX] [--channels N] [--batch N] [--python PATH]
/// </summary>
internal static class NumericsCheck
{
    private static readonly string[] Modes = ["fp32", "fp32cl", "bf16", "bf16cl"];

    public static void Run(string model, int size, int channels, int batch, string python)
    {
        Console.WriteLine($"{model}, {size} px, {channels} channel(s), batch {batch}, training mode, against float64; oneDNN: {TorchRuntime.OneDnnStatus}");
        using var scope = NewDisposeScope();
        var input = randn(batch, channels, size, size, generator: new Generator(1));
        var labels = tensor(Enumerable.Range(0, batch).Select(i => (long)(i % 10)).ToArray());
        var reference = Pass(model, channels, "f64", input, labels);
        foreach (var mode in Modes)
        {
            var (logits, gradient) = Pass(model, channels, mode, input, labels);
            double logitError = (logits - reference.Logits).abs().max().item<double>() / reference.Logits.abs().max().item<double>();
            double gradientError = (gradient - reference.Gradient).norm().item<double>() / reference.Gradient.norm().item<double>();
            double cosine = nn.functional.cosine_similarity(gradient, reference.Gradient, 0).item<double>();
            Print("ours " + mode, logitError, gradientError, cosine);
        }
        string? torch = PythonScript.Run(python, PyTorchScript, model, size, channels, batch);
        foreach (var line in torch?.Split('\n') ?? ["PyTorch: not run (no torch)"])
        {
            var fields = line.Split(' ');
            if (fields.Length == 4) Print("PyTorch " + fields[0], Parse(fields[1]), Parse(fields[2]), Parse(fields[3]));
            else Console.WriteLine(line);
        }
    }

    private static void Print(string what, double logitError, double gradientError, double cosine) =>
        Console.WriteLine($"{what,-16} logits {logitError,9:E2} | gradient {gradientError,9:E2} | gradient cosine {cosine:F6}");

    private static double Parse(string value) => double.Parse(value, System.Globalization.CultureInfo.InvariantCulture);

    // torchvision's model (its first convolution remade for other channel counts, as ours), seeded as ours, in float32 and under
    // autocast bfloat16, each against its float64 copy: one line per mode, "mode logits gradient cosine".
    private const string PyTorchScript = """
        import sys, copy, torch, torchvision
        model, size, channels, batch = sys.argv[1], *map(int, sys.argv[2:5])
        torch.manual_seed(2)
        net = getattr(torchvision.models, model)(num_classes=10).train()
        if channels != 3:
            old = net.conv1
            net.conv1 = torch.nn.Conv2d(channels, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False)
        x = torch.randn(batch, channels, size, size, generator=torch.Generator().manual_seed(1))
        y = torch.arange(batch) % 10
        def run(m, inp, autocast):
            with torch.autocast("cpu", torch.bfloat16, enabled=autocast):
                out = m(inp)
            torch.nn.functional.cross_entropy(out.float() if autocast else out, y).backward()
            return out.double().detach(), torch.cat([p.grad.flatten().double() for p in m.parameters()])
        ref_logits, ref_grad = run(copy.deepcopy(net).double(), x.double(), False)
        for name, autocast in [("fp32", False), ("autocast", True)]:
            logits, grad = run(copy.deepcopy(net), x, autocast)
            print(name, ((logits - ref_logits).abs().max() / ref_logits.abs().max()).item(), ((grad - ref_grad).norm() / ref_grad.norm()).item(),
                  torch.nn.functional.cosine_similarity(grad, ref_grad, 0).item())
        """;

    // One training-mode pass of a freshly seeded network in the given arithmetic; logits and the flattened parameter gradient in float64.
    private static (Tensor Logits, Tensor Gradient) Pass(string model, int channels, string mode, Tensor input, Tensor labels)
    {
        torch.manual_seed(2);
        using var net = ModelRegistry.Create(model, new ModelOptions { NumClasses = 10, InChannels = channels });
        bool float64 = mode == "f64";
        if (float64) net.to(ScalarType.Float64);
        net.Compute = new ComputeSettings(mode.StartsWith("bf16", StringComparison.Ordinal) ? ScalarType.BFloat16 : null, mode.EndsWith("cl", StringComparison.Ordinal));
        net.train();
        var logits = net.ForwardTrain(float64 ? input.to(ScalarType.Float64) : input).Logits;
        nn.functional.cross_entropy(logits, labels).backward();
        var gradient = cat(net.parameters().Select(p => p.grad!.flatten().to(ScalarType.Float64)).ToArray());
        return (logits.detach().to(ScalarType.Float64), gradient);
    }
}
