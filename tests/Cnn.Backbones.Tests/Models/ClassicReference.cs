using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Cnn.Backbones.Models;
using Cnn.Backbones.Weights;
using Cnn.Tests.Shared;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// torchvision references for the classic families (AlexNet, VGG, GoogLeNet, Inception v3, DenseNet, SqueezeNet) and a plain
/// PyTorch LeNet-5, generated at test time by the reference Python. A spec is a model name optionally followed by flags:
/// <c>googlenet+aux</c> (aux_logits=True), <c>inception_v3+noaux</c>, <c>+notransform</c> (transform_input=False). Without flags
/// GoogLeNet and Inception v3 use transform_input=True and torchvision's pretrained aux settings (GoogLeNet off, Inception on),
/// which are this library's defaults.
/// </summary>
internal static class ClassicReference
{
    /// <summary>Every torchvision variant of the classic families, plus the auxiliary-head alternatives.</summary>
    public static readonly string[] AllSpecs =
    [
        "alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
        "googlenet", "googlenet+aux", "inception_v3", "inception_v3+noaux",
        "densenet121", "densenet161", "densenet169", "densenet201", "squeezenet1_0", "squeezenet1_1",
    ];

    private const string Common = """
        import json, struct, sys, torch, torchvision
        import torch.nn as nn
        import torch.nn.functional as F
        M = torchvision.models

        class LeNet5(nn.Module):
            # LeCun et al. 1998: 32x32 input, tanh, average pooling, 6-16 conv maps, 120-84 fully connected units.
            def __init__(self, num_classes=10, in_channels=1):
                super().__init__()
                self.conv1 = nn.Conv2d(in_channels, 6, 5)
                self.conv2 = nn.Conv2d(6, 16, 5)
                self.fc1 = nn.Linear(16 * 5 * 5, 120)
                self.fc2 = nn.Linear(120, 84)
                self.fc3 = nn.Linear(84, num_classes)
            def stages(self, x):
                if x.shape[-1] == 28:
                    x = F.pad(x, (2, 2, 2, 2))
                s0 = F.avg_pool2d(torch.tanh(self.conv1(x)), 2)
                s1 = F.avg_pool2d(torch.tanh(self.conv2(s0)), 2)
                return [s0, s1]
            def head(self, s):
                pre = torch.tanh(self.fc2(torch.tanh(self.fc1(torch.flatten(s, 1)))))
                return pre, self.fc3(pre)
            def forward(self, x):
                return self.head(self.stages(x)[-1])[1]

        def build(spec, init=True):
            name, *flags = spec.split('+')
            if name == 'lenet5':
                return LeNet5()
            kw = {}
            if name in ('googlenet', 'inception_v3'):
                kw['transform_input'] = 'notransform' not in flags
                kw['aux_logits'] = ('aux' in flags) if name == 'googlenet' else ('noaux' not in flags)
                kw['init_weights'] = init
            return getattr(M, name)(**kw)
        """;

    private const string ArchitectureScript = Common + """

        # Only names and shapes are needed: skip the (slow) random initialisation.
        for fn in ('kaiming_normal_', 'kaiming_uniform_', 'normal_', 'trunc_normal_', 'constant_', 'uniform_'):
            setattr(torch.nn.init, fn, lambda t, *a, **k: t)
        for cls in (nn.Conv2d, nn.Linear, nn.BatchNorm2d):
            cls.reset_parameters = lambda self: None
        out = {}
        for spec in sys.argv[1:]:
            name = spec.split('+')[0]
            model = build(spec, init=False)
            entry = {"keys": [[k, list(v.shape)] for k, v in model.state_dict().items()],
                     "params": sum(p.numel() for p in model.parameters())}
            if name != 'lenet5':
                weights = M.get_model_weights(name).IMAGENET1K_V1
                t = weights.transforms()
                entry.update({
                    "meta_params": weights.meta["num_params"], "min_size": list(weights.meta["min_size"]),
                    "config": {"crop": t.crop_size[0], "resize": t.resize_size[0], "mean": list(t.mean), "std": list(t.std),
                               "interpolation": t.interpolation.value, "classes": len(weights.meta["categories"])}})
            out[spec] = entry
            del model
        print(json.dumps(out))
        """;

    private const string ParityScript = Common + """

        def job(spec, size, out, mode):
            name = spec.split('+')[0]
            torch.manual_seed(0)
            model = build(spec)
            with torch.no_grad():
                # Non-trivial BatchNorm parameters and running statistics, so a wrong eps/momentum/affine order shows.
                for m in model.modules():
                    if isinstance(m, nn.BatchNorm2d):
                        m.weight.uniform_(0.5, 1.5)
                        m.bias.uniform_(-0.2, 0.2)
                        m.running_mean.uniform_(-0.3, 0.3)
                        m.running_var.uniform_(0.5, 2.0)
                        m.num_batches_tracked.fill_(17)
            torch.save(model.state_dict(), out + "/weights.pth")
            g = torch.Generator().manual_seed(1234)
            x = torch.randn(2, 1 if name == 'lenet5' else 3, size, size, generator=g)

            def pool_stages(features, x):
                # timm's convention: a stage ends just before each max pooling; the last one ends with the features.
                pools = [i for i, layer in enumerate(features) if isinstance(layer, nn.MaxPool2d)]
                bounds = [0] + pools + [len(features)]
                outs = []
                for a, b in zip(bounds, bounds[1:]):
                    if a == b:
                        continue
                    for i in range(a, b):
                        x = features[i](x)
                    outs.append(x)
                return outs

            def stages_and_head(m, x):
                if name == 'lenet5':
                    s = m.stages(x)
                    return (s,) + m.head(s[-1])
                if name == 'alexnet' or name.startswith('vgg'):
                    s = pool_stages(m.features, x)
                    pre = m.classifier[:6](torch.flatten(m.avgpool(s[-1]), 1))
                    return s, pre, m.classifier[6](pre)
                if name.startswith('squeezenet'):
                    s = pool_stages(m.features, x)
                    return s, torch.flatten(F.adaptive_avg_pool2d(s[-1], 1), 1), torch.flatten(m.classifier(s[-1]), 1)
                if name == 'googlenet':
                    x = m._transform_input(x)
                    s0 = m.conv1(x)
                    s1 = m.conv3(m.conv2(m.maxpool1(s0)))
                    s2 = m.inception3b(m.inception3a(m.maxpool2(s1)))
                    s3 = m.inception4e(m.inception4d(m.inception4c(m.inception4b(m.inception4a(m.maxpool3(s2))))))
                    s4 = m.inception5b(m.inception5a(m.maxpool4(s3)))
                    s = [s0, s1, s2, s3, s4]
                elif name == 'inception_v3':
                    x = m._transform_input(x)
                    s0 = m.Conv2d_2b_3x3(m.Conv2d_2a_3x3(m.Conv2d_1a_3x3(x)))
                    s1 = m.Conv2d_4a_3x3(m.Conv2d_3b_1x1(m.maxpool1(s0)))
                    s2 = m.Mixed_5d(m.Mixed_5c(m.Mixed_5b(m.maxpool2(s1))))
                    s3 = m.Mixed_6e(m.Mixed_6d(m.Mixed_6c(m.Mixed_6b(m.Mixed_6a(s2)))))
                    s4 = m.Mixed_7c(m.Mixed_7b(m.Mixed_7a(s3)))
                    s = [s0, s1, s2, s3, s4]
                elif name.startswith('densenet'):
                    f = m.features
                    s0 = f.relu0(f.norm0(f.conv0(x)))
                    s1 = f.denseblock1(f.pool0(s0))
                    s2 = f.denseblock2(f.transition1(s1))
                    s3 = f.denseblock3(f.transition2(s2))
                    s4 = F.relu(f.norm5(f.denseblock4(f.transition3(s3))))
                    s = [s0, s1, s2, s3, s4]
                fc = m.classifier if name.startswith('densenet') else m.fc
                pre = torch.flatten(F.adaptive_avg_pool2d(s[-1], 1), 1)
                return s, pre, fc(pre)

            tensors = {"input": x}
            meta = {}
            if mode == 'eval':
                model.eval()
                with torch.no_grad():
                    s, pre, logits = stages_and_head(model, x)
                    assert torch.allclose(logits, model(x), rtol=0, atol=1e-6), "staged forward differs from model(x)"
                for i, t in enumerate(s):
                    tensors[f"stage{i}"] = t
                tensors["pre_logits"] = pre
                tensors["logits"] = logits
            else:
                # Training mode (batch statistics) with every dropout off, so the auxiliary outputs are deterministic.
                model.train()
                for m in model.modules():
                    if isinstance(m, nn.Dropout):
                        m.eval()
                with torch.no_grad():
                    if name == 'googlenet':
                        # Hooks on the aux modules themselves: torchvision 0.14's GoogLeNetOutputs swaps the field names
                        # (aux_logits1 holds aux2's output).
                        captured = {}
                        for k in ('aux1', 'aux2'):
                            getattr(model, k).register_forward_hook(lambda mod, inp, outp, k=k: captured.__setitem__(k, outp))
                        model(x)
                        tensors["aux1"], tensors["aux2"] = captured["aux1"], captured["aux2"]
                    else:
                        o = model(x)
                        tensors["aux"] = o.aux_logits
                        try:
                            model(torch.randn(2, 3, size - 1, size - 1, generator=g))
                            meta["aux_fails_one_pixel_smaller"] = False
                        except RuntimeError:
                            meta["aux_fails_one_pixel_smaller"] = True
            meta["num_stages"] = sum(1 for k in tensors if k.startswith("stage"))
            with open(out + "/meta.json", "w") as f:
                json.dump(meta, f)
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

        # Each argument is one fixture: spec|size|mode|output folder (one process: torch is imported once).
        for arg in sys.argv[1:]:
            spec, size, mode, out = arg.split('|')
            job(spec, int(size), out, mode)
        """;

    private static readonly Lazy<IReadOnlyDictionary<string, ArchitectureDump>> Architectures = new(LoadArchitectures);
    private static readonly ConcurrentDictionary<string, Lazy<Fixture>> Fixtures = new();

    public static ArchitectureDump Architecture(string spec) => Architectures.Value[spec];

    /// <summary>
    /// The fixtures the tests use. The first request for any of them generates them all in one Python process, which saves a
    /// torch import (several seconds on a busy machine) per fixture.
    /// </summary>
    private static readonly (string Spec, int Size, string Mode)[] Batch =
    [
        ("alexnet", 64, "eval"), ("vgg11", 64, "eval"), ("vgg11_bn", 64, "eval"),
        ("googlenet", 64, "eval"), ("googlenet+notransform", 64, "eval"), ("googlenet+aux", 64, "eval"), ("googlenet+aux", 64, "train"),
        ("inception_v3", 75, "eval"), ("inception_v3", InceptionV3.MinAuxInputSize, "train"),
        ("densenet121", 64, "eval"), ("squeezenet1_0", 64, "eval"), ("squeezenet1_1", 64, "eval"), ("lenet5", 32, "eval"), ("lenet5", 28, "eval"),
    ];

    private static readonly Lazy<bool> BatchGenerated = new(() =>
    {
        var fixtures = Fixture.Generate(Batch);
        for (int i = 0; i < Batch.Length; i++)
        {
            var fixture = fixtures[i];
            Fixtures.TryAdd(Key(Batch[i].Spec, Batch[i].Size, Batch[i].Mode), new Lazy<Fixture>(() => fixture));
        }
        return true;
    });

    /// <summary>The parity fixture for a spec, input size and mode ("eval" or "train"); generated once per test run and shared.</summary>
    public static Fixture Parity(string spec, int size, string mode = "eval")
    {
        if (Batch.Contains((spec, size, mode))) _ = BatchGenerated.Value;
        return Fixtures.GetOrAdd(Key(spec, size, mode), _ => new Lazy<Fixture>(() => Fixture.Generate([(spec, size, mode)])[0])).Value;
    }

    /// <summary>Whether the fixture is one of those generated together and shared by several tests (kept until the process exits).</summary>
    public static bool IsShared(string spec, int size, string mode = "eval") => Batch.Contains((spec, size, mode));

    private static string Key(string spec, int size, string mode) => $"{spec}@{size}/{mode}";

    /// <summary>The model options equivalent to a spec's flags.</summary>
    public static ModelOptions OptionsFor(string spec, ModelOptions? baseOptions = null)
    {
        var flags = spec.Split('+').Skip(1).ToHashSet();
        var options = baseOptions ?? new ModelOptions();
        if (flags.Contains("aux")) options = options with { AuxLogits = true };
        if (flags.Contains("noaux")) options = options with { AuxLogits = false };
        if (flags.Contains("notransform")) options = options with { TransformInput = false };
        return options;
    }

    public static string NameOf(string spec) => spec.Split('+')[0];

    private static IReadOnlyDictionary<string, ArchitectureDump> LoadArchitectures()
    {
        string json = ReferencePython.Run(ArchitectureScript, [.. AllSpecs, "lenet5"]);
        using var doc = JsonDocument.Parse(json);
        var result = new Dictionary<string, ArchitectureDump>();
        foreach (var entry in doc.RootElement.EnumerateObject())
        {
            var v = entry.Value;
            var keys = v.GetProperty("keys").EnumerateArray()
                .Select(k => (k[0].GetString()!, k[1].EnumerateArray().Select(d => d.GetInt64()).ToArray()))
                .ToArray();
            ArchitectureConfig? config = null;
            if (v.TryGetProperty("config", out var c))
            {
                config = new ArchitectureConfig(
                    v.GetProperty("meta_params").GetInt64(), v.GetProperty("min_size")[0].GetInt32(),
                    c.GetProperty("crop").GetInt32(), c.GetProperty("resize").GetInt32(),
                    c.GetProperty("mean").EnumerateArray().Select(d => d.GetDouble()).ToArray(),
                    c.GetProperty("std").EnumerateArray().Select(d => d.GetDouble()).ToArray(),
                    c.GetProperty("interpolation").GetString()!, c.GetProperty("classes").GetInt32());
            }
            result[entry.Name] = new ArchitectureDump(keys, v.GetProperty("params").GetInt64(), config);
        }
        return result;
    }

    internal sealed record ArchitectureDump(IReadOnlyList<(string Key, long[] Shape)> Keys, long Parameters, ArchitectureConfig? Config);

    internal sealed record ArchitectureConfig(
        long MetaParameters, int MinSize, int Crop, int Resize, double[] Mean, double[] Std, string Interpolation, int Classes);

    /// <summary>Files made by the parity script; they live until disposed, at the latest until the test process exits.</summary>
    internal sealed class Fixture : IDisposable
    {
        private Fixture(string directory, JsonElement meta)
        {
            Directory = directory;
            Meta = meta;
        }

        public string Directory { get; }
        public JsonElement Meta { get; }
        public string WeightsPath => Path.Combine(Directory, "weights.pth");
        public string OutputsPath => Path.Combine(Directory, "outputs.safetensors");
        public int StageCount => Meta.GetProperty("num_stages").GetInt32();

        public static IReadOnlyList<Fixture> Generate(IReadOnlyList<(string Spec, int Size, string Mode)> jobs)
        {
            var folders = jobs.Select(_ => new TempDirectory()).ToArray();
            AppDomain.CurrentDomain.ProcessExit += (_, _) => { foreach (var f in folders) f.Dispose(); };
            ReferencePython.Run(ParityScript, jobs.Select((j, i) =>
                $"{j.Spec}|{j.Size.ToString(CultureInfo.InvariantCulture)}|{j.Mode}|{folders[i].Path}").ToArray());
            return folders.Select(f =>
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(f.File("meta.json")));
                return new Fixture(f.Path, doc.RootElement.Clone());
            }).ToArray();
        }

        public StateDict LoadOutputs() => WeightFile.Load(OutputsPath);

        /// <summary>Deletes the files now (for a fixture of one test, not a shared one from <see cref="Parity"/>).</summary>
        public void Dispose()
        {
            try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
        }
    }
}
