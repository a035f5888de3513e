using Cnn.Backbones.Weights;
using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using Cnn.MLNet.Persistence;
using Cnn.MLNet.Tests.Fuzzing;
using Microsoft.ML;
using SharpFuzz;

// Cnn.Fuzz FORMAT                 the harness under afl-fuzz (each input arrives on stdin / through AFL's shared memory)
// Cnn.Fuzz FORMAT --seeds DIR     writes the format's seed files (safetensors, idx, image, modelzip; pth and onnx come from tools/fuzz_seeds.py)
// Cnn.Fuzz FORMAT FILE...         runs the harness once on each file, e.g. to replay what afl-fuzz saved under crashes/
// A harness swallows only the exceptions its parser documents; anything else escapes and is a crash to afl-fuzz.
if (args.Length == 0 || !Harnesses.All.TryGetValue(args[0], out var harness))
{
    Console.Error.WriteLine($"usage: Cnn.Fuzz {{{string.Join('|', Harnesses.All.Keys)}}} [--seeds DIR | FILE...]");
    return 2;
}
if (args.Length == 3 && args[1] == "--seeds")
{
    Directory.CreateDirectory(args[2]);
    int n = 0;
    foreach (var seed in Harnesses.Seeds(args[0])) File.WriteAllBytes(Path.Combine(args[2], $"seed{n++}"), seed);
    Console.WriteLine($"{n} seeds written to {args[2]}");
    return 0;
}
if (args.Length > 1)
{
    foreach (var file in args.Skip(1))
    {
        harness(File.ReadAllBytes(file));
        Console.WriteLine($"{file}: read or refused with the documented exception");
    }
    return 0;
}
Fuzzer.OutOfProcess.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    harness(buffer.ToArray());
});
return 0;

internal static class Harnesses
{
    private static readonly string Scratch = Path.Combine(Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath(), $"cnn-fuzz-{Environment.ProcessId}");
    private static readonly Lazy<MLContext> Ml = new(() => new MLContext(seed: 1));

    public static readonly IReadOnlyDictionary<string, Action<byte[]>> All = new Dictionary<string, Action<byte[]>>
    {
        ["pth"] = Weights,
        ["safetensors"] = Weights,
        ["onnx"] = Weights,
        ["idx"] = bytes => Refused<InvalidDataException>(() => IdxFile.Read(new MemoryStream(bytes), "input")),
        ["image"] = bytes => Refused<ImageDecodeException>(() =>
        {
            ImageDecoder.Decode(bytes, 3, "input");
            ImageDecoder.Decode(bytes, 1, "input");
        }),
        ["modelzip"] = bytes => Refused<InvalidDataException>(() =>
        {
            File.WriteAllBytes(Scratch, bytes);
            var model = CnnPipelineFile.Load(Ml.Value, Scratch, out _);
            foreach (var stage in CnnPipelineFile.Stages(model)) (stage as IDisposable)?.Dispose();
        }),
    };

    public static IEnumerable<byte[]> Seeds(string format) => format switch
    {
        "safetensors" => new[] { SafeTensorsSeed() },
        "idx" => FuzzSeeds.Idx(),
        "image" => FuzzSeeds.Images(),
        "modelzip" => new[] { FuzzSeeds.Pipeline() },
        _ => throw new ArgumentException($"seeds for {format} are written by tools/fuzz_seeds.py"),
    };

    /// <summary>The weight formats go through the same dispatch as users' files: <see cref="WeightFile.Inspect"/>, then <see cref="WeightFile.Load"/>.</summary>
    private static void Weights(byte[] bytes) => Refused<WeightFileException>(() =>
    {
        File.WriteAllBytes(Scratch, bytes);
        WeightFile.Inspect(Scratch);
        WeightFile.Load(Scratch).Dispose();
    });

    private static void Refused<TDocumented>(Action read) where TDocumented : Exception
    {
        try
        {
            read();
        }
        catch (TDocumented)
        {
        }
    }

    private static byte[] SafeTensorsSeed()
    {
        string path = Scratch + ".safetensors";
        using (var tensors = new StateDict())
        {
            tensors.Add("conv.weight", TorchSharp.torch.tensor(Enumerable.Range(0, 24).Select(i => (float)i).ToArray()).reshape(2, 3, 2, 2));
            tensors.Add("steps", TorchSharp.torch.tensor(new long[] { 3, -7 }));
            tensors.Add("half", TorchSharp.torch.ones(3).to(TorchSharp.torch.ScalarType.Float16));
            SafeTensors.Write(path, tensors, new Dictionary<string, string> { ["architecture"] = "resnet18" });
        }
        try { return File.ReadAllBytes(path); }
        finally { File.Delete(path); }
    }
}
