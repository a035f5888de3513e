using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Cnn.Backbones.Compute;
using Cnn.Backbones.Models;
using Cnn.Backbones.Onnx.Export;
using Cnn.MLNet.Data;
using Cnn.MLNet.Networks;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Benchmarks;

/// <summary>
/// Inference img/s of one network, side by side in one run on the same input, batch and thread count: ours (float32; with
/// BatchNorm folded; channels-last and folded; bfloat16 where the CPU has it natively), ONNX Runtime on our ONNX export of the
/// same network, ONNX Runtime on ML.NET's own ResNet-18 (the graph <c>DnnFeaturizeImage</c> runs; resnet18 only), and PyTorch's
/// eval mode in float32 and channels-last; and what <c>cnn predict</c>, <c>eval</c>, <c>features</c> and <c>ExtractCnnFeatures</c>
/// run by default (a <see cref="CnnNetwork"/> in float32 contiguous with the Auto engine, its calibration on the first batch
/// included but not timed). Each figure is the median of the timed batches after one warm-up batch. Ends with one verdict per
/// model: the default against ONNX Runtime on our export (goal >= 1.0).
/// Usage: dotnet run -c Release --project benchmarks/Cnn.Benchmarks -- --inference [--models M,M] [--size PX] [--batch N] [--steps N]
/// </summary>
internal static class InferenceBenchmark
{
    public static void Run(IReadOnlyList<string> models, int size, int batch, int steps, string python)
    {
        var verdicts = new List<string>();
        foreach (string model in models)
        {
            var (ours, onnxRuntime) = Run(model, size, batch, steps, python);
            verdicts.Add(Verdict.AtLeast($"default inference {model} {size} px: ours default {ours:0.0} img/s / ONNX Runtime {onnxRuntime:0.0} img/s", ours / onnxRuntime, 1.0));
        }
        foreach (string verdict in verdicts) Console.WriteLine(verdict);
    }

    private static (double Default, double OnnxRuntime) Run(string model, int size, int batch, int steps, string python)
    {
        int threads = torch.get_num_threads();
        Console.WriteLine($"{model} inference, {size} px, batch {batch}, {threads} threads, median img/s of {steps} batches after one warm-up");
        var rows = new List<(string Name, double Rate, bool Ours)>();
        torch.manual_seed(1);
        using var net = ModelRegistry.Create(model);
        net.eval();
        using var x = randn(batch, net.InChannels, size, size, generator: new Generator(3));

        double Ours(ComputeSettings settings, bool fold)
        {
            net.Compute = settings;
            if (fold) net.FoldBatchNorm(); else net.UnfoldBatchNorm();
            return Median(steps, batch, () =>
            {
                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                net.call(x);
            });
        }
        rows.Add(("ours, float32", Ours(ComputeSettings.Float32, fold: false), true));
        rows.Add(("ours, float32, BatchNorm folded", Ours(ComputeSettings.Float32, fold: true), true));
        rows.Add(("ours, float32 channels-last, folded", Ours(new ComputeSettings(ChannelsLast: true), fold: true), true));
        if (CpuFeatures.HasNativeBFloat16)
            rows.Add(("ours, bfloat16 channels-last, folded", Ours(new ComputeSettings(ScalarType.BFloat16, ChannelsLast: true), fold: true), true));
        net.Compute = ComputeSettings.Float32;
        net.UnfoldBatchNorm();

        // The default and ONNX Runtime on our export are timed in alternation, batch by batch, so that a load that comes and
        // goes (a shared machine) weighs on both alike and their ratio, the verdict, holds.
        var export = OnnxExporter.Export(net, new OnnxExportOptions { ImageSize = size });
        var (defaultName, defaultRate, onnxRuntime) = DefaultAgainstOnnxRuntime(model, size, batch, steps, Google.Protobuf.MessageExtensions.ToByteArray(export.Model), x, threads);
        rows.Add((defaultName, defaultRate, true));
        rows.Add(("ONNX Runtime, our export", onnxRuntime, false));
        if (model == "resnet18" && MlNetResNet18Graph() is { } mlnet)
            rows.Add(("ONNX Runtime, ML.NET's ResNet-18 (DnnFeaturizeImage's graph)", OnnxRuntime(File.ReadAllBytes(mlnet), x, threads, steps).Rate, false));
        foreach (var (name, rate) in PyTorch(python, model, size, batch, steps, threads))
            rows.Add((name, rate, false));

        foreach (var (name, rate, _) in rows) Console.WriteLine($"  {name,-62} {rate,8:0.0} img/s");
        var best = rows.Where(r => r.Ours).MaxBy(r => r.Rate);
        var rival = rows.Where(r => !r.Ours).MaxBy(r => r.Rate);
        Console.WriteLine($"best of ours ({best.Name}) / fastest other ({rival.Name}): {best.Rate / rival.Rate:0.00} (goal >= 1.0)");
        return (defaultRate, onnxRuntime);
    }

    /// <summary>
    /// What the inference verbs run by default: a network built from the registry, float32 contiguous with the Auto engine,
    /// its pass over a prepared batch (<c>CnnNetwork.ForwardBatch</c>, what predict, eval, features and the transformers call;
    /// they decode and preprocess batch k + 1 while batch k runs, so this pass is their steady-state rate). The first batch
    /// calibrates (untimed); the steady state after it is timed.
    /// </summary>
    private static (string Name, double Rate, double OnnxRuntime) DefaultAgainstOnnxRuntime(string model, int size, int batch, int steps, byte[] graph, Tensor x, int threads)
    {
        var spec = NetworkSpec.For(model, new ModelOptions { ImageSize = size }, cropPct: 1.0);
        using var network = NetworkBuilder.Build(spec, CPU, seed: 1);
        network.UseCompute(Cnn.MLNet.CnnPrecision.Float32, Cnn.MLNet.CnnMemoryFormat.Contiguous, Cnn.MLNet.CnnInferenceEngine.Auto);
        var random = new Random(3);
        var images = Enumerable.Range(0, batch).Select(i =>
        {
            var pixels = new byte[size * size * spec.Preprocess.Channels];
            random.NextBytes(pixels);
            return ImageSample.FromPixels(pixels, size, size, spec.Preprocess.Channels, 0, $"image {i}");
        }).ToArray();
        using var prepared = network.PrepareBatch(images);
        var clock = Stopwatch.StartNew();
        network.ForwardBatch(prepared).Dispose(); // the calibration
        Console.WriteLine($"  (calibration and first batch: {clock.Elapsed.TotalSeconds:0.0} s; {network.EngineDescription})");
        string chose = network.AutoChoice switch
        {
            Cnn.MLNet.CnnInferenceEngine.OnnxRuntime => "ONNX Runtime",
            Cnn.MLNet.CnnInferenceEngine.TorchSharp => "TorchSharp",
            _ => "nothing",
        };
        var (onnxRuntime, rate) = OnnxRuntime(graph, x, threads, steps, alongside: () => network.ForwardBatch(prepared).Dispose());
        return ($"ours, default (Auto: chose {chose})", rate, onnxRuntime);
    }

    /// <summary>Medians of two steps timed in alternation (a b, b a, …) after one warm-up each.</summary>
    private static (double A, double B) Alternating(int steps, int batch, Action a, Action b)
    {
        a();
        b();
        var (timesA, timesB) = (new List<double>(), new List<double>());
        for (int s = 0; s < steps; s++)
        {
            foreach (var (step, times) in s % 2 == 0 ? new[] { (a, timesA), (b, timesB) } : [(b, timesB), (a, timesA)])
            {
                var clock = Stopwatch.StartNew();
                step();
                times.Add(clock.Elapsed.TotalSeconds);
            }
        }
        timesA.Sort();
        timesB.Sort();
        return (batch / timesA[timesA.Count / 2], batch / timesB[timesB.Count / 2]);
    }

    private static double Median(int steps, int batch, Action step)
    {
        step();
        var seconds = new List<double>();
        for (int s = 0; s < steps; s++)
        {
            var clock = Stopwatch.StartNew();
            step();
            seconds.Add(clock.Elapsed.TotalSeconds);
        }
        seconds.Sort();
        return batch / seconds[seconds.Count / 2];
    }

    // ONNX Runtime's default full graph optimisation (Conv+BatchNorm fusion, Conv+activation fusion, layout transforms),
    // the given intra-op threads, one inter-op thread. A graph with a fixed batch of 1 (ML.NET's) runs image by image.
    // With alongside, that step is timed in alternation with ONNX Runtime's (its rate second, else NaN).
    private static (double Rate, double Alongside) OnnxRuntime(byte[] graph, Tensor x, int threads, int steps, Action? alongside = null)
    {
        using var options = new SessionOptions
        {
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR, IntraOpNumThreads = threads, InterOpNumThreads = 1,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        using var session = new InferenceSession(graph, options);
        var inputShape = session.InputMetadata.Values.First().Dimensions;
        bool single = inputShape[0] == 1;
        long batch = x.shape[0];
        var images = single ? Enumerable.Range(0, (int)batch).Select(i => x[i].unsqueeze(0)).ToArray() : [x];
        var values = images.Select(t => OrtValue.CreateTensorValueFromMemory(t.contiguous().data<float>().ToArray(), t.shape)).ToArray();
        try
        {
            string input = session.InputNames[0], output = session.OutputNames[0];
            using var runOptions = new RunOptions();
            void Step()
            {
                foreach (var value in values)
                    using (session.Run(runOptions, [input], [value], [output])) { }
            }
            return alongside is null ? (Median(steps, (int)batch, Step), double.NaN) : Alternating(steps, (int)batch, Step, alongside);
        }
        finally
        {
            foreach (var value in values) value.Dispose();
        }
    }

    // The network graph of the Microsoft.ML.DnnImageFeaturizer.ResNet18 package, copied beside this program by its build.
    private static string? MlNetResNet18Graph()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "DnnImageModels", "ResNet18Onnx", "ResNet18.onnx");
        return File.Exists(path) ? path : null;
    }

    private static IEnumerable<(string Name, double Rate)> PyTorch(string python, string model, int size, int batch, int steps, int threads)
    {
        const string script = """
            import sys, time, torch, torchvision
            model, size, batch, steps, threads = sys.argv[1], *map(int, sys.argv[2:6])
            torch.set_num_threads(threads)
            torch.manual_seed(1)
            net = getattr(torchvision.models, model)().eval()
            x = torch.randn(batch, 3, size, size)
            def median(n, x):
                with torch.no_grad():
                    n(x)
                    times = []
                    for _ in range(steps):
                        t = time.perf_counter(); n(x); times.append(time.perf_counter() - t)
                return batch / sorted(times)[len(times) // 2]
            fp32 = median(net, x)
            cl = median(net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last))
            print(torch.__version__, f"{fp32:.3f}", f"{cl:.3f}")
            """;
        string? output = PythonScript.Run(python, script, model, size, batch, steps, threads);
        if (output is null) yield break;
        var parts = output.Split(' ');
        if (parts.Length != 3) yield break;
        yield return ($"PyTorch {parts[0]}, float32", double.Parse(parts[1], CultureInfo.InvariantCulture));
        yield return ($"PyTorch {parts[0]}, channels-last", double.Parse(parts[2], CultureInfo.InvariantCulture));
    }
}
