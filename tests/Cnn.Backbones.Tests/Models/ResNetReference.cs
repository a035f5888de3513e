using System.Collections.Concurrent;
using System.Text.Json;
using Cnn.Backbones.Weights;
using Cnn.Tests.Shared;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// torchvision references for the model tests, generated at test time by the reference Python: architecture dumps (state-dict
/// keys, shapes, parameter counts, weights configuration) and parity fixtures (a seeded model with randomised BatchNorm
/// statistics saved with <c>torch.save</c>, plus its eval-mode outputs on a fixed batch).
/// </summary>
internal static class ResNetReference
{
    public static readonly string[] AllVariants =
    [
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
        "wide_resnet50_2", "wide_resnet101_2",
    ];

    /// <summary>Outputs written by the parity script, in the order they are checked.</summary>
    public static readonly string[] OutputNames = ["act1", "layer1", "layer2", "layer3", "layer4", "pre_logits", "logits"];

    private const string ArchitectureScript = """
        import json, sys, torch, torchvision
        import torchvision.models as M
        # Only names and shapes are needed: skip the (slow) random initialisation.
        torch.nn.init.kaiming_normal_ = lambda t, *a, **k: t
        for cls in (torch.nn.Conv2d, torch.nn.Linear, torch.nn.BatchNorm2d):
            cls.reset_parameters = lambda self: None
        out = {}
        for name in sys.argv[1:]:
            model = getattr(M, name)()
            weights = M.get_model_weights(name).IMAGENET1K_V1
            t = weights.transforms()
            out[name] = {
                "keys": [[k, list(v.shape)] for k, v in model.state_dict().items()],
                "params": sum(p.numel() for p in model.parameters()),
                "meta_params": weights.meta["num_params"],
                "config": {"crop": t.crop_size[0], "resize": t.resize_size[0], "mean": list(t.mean), "std": list(t.std),
                           "interpolation": t.interpolation.value, "classes": len(weights.meta["categories"])},
            }
            del model
        print(json.dumps(out))
        """;

    private const string ParityScript = """
        import json, struct, sys, torch, torchvision
        name, size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        torch.manual_seed(0)
        model = getattr(torchvision.models, name)()
        with torch.no_grad():
            # Non-trivial BatchNorm parameters and running statistics, so a wrong eps/momentum/affine order shows.
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
                    m.running_mean.uniform_(-0.3, 0.3)
                    m.running_var.uniform_(0.5, 2.0)
                    m.num_batches_tracked.fill_(17)
        model.eval()
        torch.save(model.state_dict(), out + "/weights.pth")
        g = torch.Generator().manual_seed(1234)
        x = torch.randn(2, 3, size, size, generator=g)
        with torch.no_grad():
            act1 = model.relu(model.bn1(model.conv1(x)))
            l1 = model.layer1(model.maxpool(act1))
            l2 = model.layer2(l1)
            l3 = model.layer3(l2)
            l4 = model.layer4(l3)
            pre = torch.flatten(model.avgpool(l4), 1)
            logits = model.fc(pre)
            assert torch.equal(logits, model(x)), "staged forward differs from model(x)"
        tensors = {"input": x, "act1": act1, "layer1": l1, "layer2": l2, "layer3": l3, "layer4": l4, "pre_logits": pre, "logits": logits}
        # Outputs as safetensors (a plain format, independent of the .pth reader under test).
        header, offset, blobs = {}, 0, []
        for k, t in tensors.items():
            b = t.contiguous().numpy().tobytes()
            header[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
            offset += len(b)
            blobs.append(b)
        h = json.dumps(header).encode("utf-8")
        h += b" " * ((8 - len(h) % 8) % 8)
        with open(out + "/outputs.safetensors", "wb") as f:
            f.write(struct.pack("<Q", len(h)))
            f.write(h)
            for b in blobs:
                f.write(b)
        """;

    private static readonly Lazy<IReadOnlyDictionary<string, ArchitectureDump>> Architectures = new(LoadArchitectures);
    private static readonly ConcurrentDictionary<string, Lazy<ParityFixture>> Fixtures = new();

    public static ArchitectureDump Architecture(string name) => Architectures.Value[name];

    /// <summary>The parity fixture for a variant and input size; generated once per test run and shared.</summary>
    public static ParityFixture Parity(string name, int size) =>
        Fixtures.GetOrAdd($"{name}@{size}", _ => new Lazy<ParityFixture>(() => ParityFixture.Generate(name, size))).Value;

    private static IReadOnlyDictionary<string, ArchitectureDump> LoadArchitectures()
    {
        string json = ReferencePython.Run(ArchitectureScript, AllVariants);
        using var doc = JsonDocument.Parse(json);
        var result = new Dictionary<string, ArchitectureDump>();
        foreach (var entry in doc.RootElement.EnumerateObject())
        {
            var v = entry.Value;
            var keys = v.GetProperty("keys").EnumerateArray()
                .Select(k => (k[0].GetString()!, k[1].EnumerateArray().Select(d => d.GetInt64()).ToArray()))
                .ToArray();
            var c = v.GetProperty("config");
            result[entry.Name] = new ArchitectureDump(
                keys, v.GetProperty("params").GetInt64(), v.GetProperty("meta_params").GetInt64(),
                c.GetProperty("crop").GetInt32(), c.GetProperty("resize").GetInt32(),
                c.GetProperty("mean").EnumerateArray().Select(d => d.GetDouble()).ToArray(),
                c.GetProperty("std").EnumerateArray().Select(d => d.GetDouble()).ToArray(),
                c.GetProperty("interpolation").GetString()!, c.GetProperty("classes").GetInt32());
        }
        return result;
    }

    internal sealed record ArchitectureDump(
        IReadOnlyList<(string Key, long[] Shape)> Keys, long Parameters, long MetaParameters,
        int Crop, int Resize, double[] Mean, double[] Std, string Interpolation, int Classes);

    /// <summary>Files made by the parity script; they live until disposed, at the latest until the test process exits.</summary>
    internal sealed class ParityFixture : IDisposable
    {
        private ParityFixture(string directory) => Directory = directory;

        public string Directory { get; }
        public string WeightsPath => Path.Combine(Directory, "weights.pth");
        public string OutputsPath => Path.Combine(Directory, "outputs.safetensors");

        public static ParityFixture Generate(string name, int size)
        {
            var temp = new TempDirectory();
            AppDomain.CurrentDomain.ProcessExit += (_, _) => temp.Dispose();
            ReferencePython.Run(ParityScript, name, size.ToString(System.Globalization.CultureInfo.InvariantCulture), temp.Path);
            return new ParityFixture(temp.Path);
        }

        public StateDict LoadOutputs() => WeightFile.Load(OutputsPath);

        /// <summary>Deletes the files now (for a fixture of one test, not one from the shared <see cref="Parity"/> cache).</summary>
        public void Dispose()
        {
            try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>Same shape and bit-for-bit equal values.</summary>
    public static bool Identical(Tensor a, Tensor b)
    {
        if (!a.shape.SequenceEqual(b.shape)) return false;
        using var equal = a.eq(b);
        using var all = equal.all();
        return all.item<bool>();
    }

    /// <summary>Asserts max|actual - expected| &lt;= 1e-4 · max|expected| and equal shapes.</summary>
    public static void AssertClose(Tensor expected, Tensor actual, string what)
    {
        CollectionAssert.AreEqual(expected.shape, actual.shape, $"{what}: shape [{string.Join(", ", actual.shape)}] != torchvision's [{string.Join(", ", expected.shape)}]");
        using var scope = NewDisposeScope();
        double scale = expected.abs().max().item<float>();
        double diff = (actual - expected).abs().max().item<float>();
        Assert.IsTrue(scale > 0, $"{what}: reference is all zeros, the comparison would be meaningless");
        Assert.IsTrue(diff <= 1e-4 * scale, $"{what}: max|diff| = {diff:G4} exceeds 1e-4 · max|ref| = {1e-4 * scale:G4}");
    }
}
