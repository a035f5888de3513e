using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Cnn.Backbones.Models;
using Cnn.Backbones.Weights;
using Cnn.Tests.Shared;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// torchvision references for the modern families (MobileNet, EfficientNet, ConvNeXt, RegNet, ViT), generated at test time by
/// the reference Python: one process dumps the architecture of every requested variant (keys, shapes, parameter counts,
/// transforms, classifier dropout, stochastic-depth rates); one process makes every parity fixture of a test class (a seeded
/// model with randomised norms and zero-initialised parameters, saved with <c>torch.save</c>, and its eval outputs captured by
/// forward hooks on the modules our <see cref="Backbone.FeatureInfo"/> names).
/// </summary>
internal static class ModernReference
{
    private const string ArchitectureScript = """
        import json, sys, torch, torchvision
        import torchvision.models as M
        from torchvision.ops import StochasticDepth
        # Only names and shapes are needed: skip the (slow) random initialisation.
        for f in ("kaiming_normal_", "normal_", "uniform_", "trunc_normal_", "xavier_uniform_", "zeros_", "ones_", "constant_"):
            setattr(torch.nn.init, f, lambda t, *a, **k: t)
        for cls in (torch.nn.Conv2d, torch.nn.Linear, torch.nn.BatchNorm2d, torch.nn.LayerNorm):
            cls.reset_parameters = lambda self: None
        torch.nn.MultiheadAttention._reset_parameters = lambda self: None
        out = {}
        for name in sys.argv[1:]:
            model = getattr(M, name)()
            weights = M.get_model_weights(name).IMAGENET1K_V1
            t = weights.transforms()
            drops = [m.p for n, m in model.named_modules() if isinstance(m, torch.nn.Dropout) and n.split(".")[0] in ("classifier", "heads")]
            out[name] = {
                "keys": [[k, list(v.shape)] for k, v in model.state_dict().items()],
                "params": sum(p.numel() for p in model.parameters()),
                "meta_params": weights.meta["num_params"],
                "dropout": drops[0] if drops else 0.0,
                "drop_path": [m.p for m in model.modules() if isinstance(m, StochasticDepth)],
                "config": {"crop": t.crop_size[0], "resize": t.resize_size[0], "mean": list(t.mean), "std": list(t.std),
                           "interpolation": t.interpolation.value, "classes": len(weights.meta["categories"])},
            }
            del model
        print(json.dumps(out))
        """;

    private const string ParityScript = """
        import json, os, struct, sys, torch, torchvision
        import torchvision.models as M
        spec, root = json.loads(open(sys.argv[1]).read()), sys.argv[2]

        def save_outputs(path, tensors):
            header, offset, blobs = {}, 0, []
            for k, t in tensors.items():
                b = t.detach().contiguous().numpy().tobytes()
                header[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
                offset += len(b)
                blobs.append(b)
            h = json.dumps(header).encode("utf-8")
            h += b" " * ((8 - len(h) % 8) % 8)
            with open(path, "wb") as f:
                f.write(struct.pack("<Q", len(h)))
                f.write(h)
                for b in blobs:
                    f.write(b)

        def randomise(model):
            # Non-trivial norms, running statistics, layer scales and zero-initialised parameters (ViT's head and class token,
            # biases), so wrong eps, affine order, scale or missing bias shows in the outputs.
            g = torch.Generator().manual_seed(7)
            with torch.no_grad():
                for name, m in model.named_modules():
                    if isinstance(m, torch.nn.BatchNorm2d):
                        m.weight.uniform_(0.5, 1.5); m.bias.uniform_(-0.2, 0.2)
                        m.running_mean.uniform_(-0.3, 0.3); m.running_var.uniform_(0.5, 2.0); m.num_batches_tracked.fill_(17)
                    elif isinstance(m, torch.nn.LayerNorm):
                        m.weight.uniform_(0.5, 1.5); m.bias.uniform_(-0.2, 0.2)
                for name, p in model.named_parameters():
                    if name.endswith("layer_scale"):
                        p.uniform_(0.2, 0.6)
                    elif p.numel() > 1 and float(p.std()) == 0.0 or p.numel() == 1:
                        p.copy_(torch.randn(p.shape, generator=g) * 0.02)

        for case in spec:
            torch.manual_seed(0)
            model = getattr(M, case["name"])(**case.get("kwargs", {}))
            randomise(model)
            model.eval()
            d = os.path.join(root, case["id"])
            os.makedirs(d)
            torch.save(model.state_dict(), os.path.join(d, "weights.pth"))
            captured, hooks = {}, []
            modules = dict(model.named_modules())
            for key, module, where in case["hooks"]:
                if where == "out":
                    hooks.append(modules[module].register_forward_hook(lambda m, i, o, key=key: captured.__setitem__(key, o)))
                else:
                    hooks.append(modules[module].register_forward_pre_hook(lambda m, i, key=key: captured.__setitem__(key, i[0])))
            g = torch.Generator().manual_seed(1234)
            x = torch.randn(case["batch"], 3, case["size"], case["size"], generator=g)
            with torch.no_grad():
                logits = model(x)
            for h in hooks:
                h.remove()
            tensors = {"input": x, **captured, "logits": logits}
            extra = case.get("resample")
            if extra:
                # timm's resample_abs_pos_embed (its defaults): keep the class token, antialiased bicubic (align_corners=False) on the grid.
                sd = model.state_dict()
                pos = sd["encoder.pos_embedding"]
                old, new = int((pos.shape[1] - 1) ** 0.5), extra["size"] // extra["patch"]
                grid = pos[:, 1:].reshape(1, old, old, -1).permute(0, 3, 1, 2)
                grid = torch.nn.functional.interpolate(grid, size=(new, new), mode="bicubic", align_corners=False, antialias=True)
                grid = grid.permute(0, 2, 3, 1).reshape(1, new * new, -1)
                sd["encoder.pos_embedding"] = torch.cat([pos[:, :1], grid], dim=1)
                other = getattr(M, case["name"])(image_size=extra["size"])
                other.load_state_dict(sd)
                other.eval()
                x2 = torch.randn(1, 3, extra["size"], extra["size"], generator=g)
                with torch.no_grad():
                    tensors.update({"resampled_input": x2, "resampled_pos": sd["encoder.pos_embedding"], "resampled_logits": other(x2)})
            save_outputs(os.path.join(d, "outputs.safetensors"), tensors)
            del model
        """;

    private static readonly ConcurrentDictionary<string, IReadOnlyDictionary<string, ModernArchitecture>> ArchitectureCache = new();

    /// <summary>The architecture dumps of <paramref name="names"/>, generated by one Python process and cached per name list.</summary>
    public static IReadOnlyDictionary<string, ModernArchitecture> Architectures(IReadOnlyList<string> names) =>
        ArchitectureCache.GetOrAdd(string.Join(",", names), _ => LoadArchitectures(names));

    private static IReadOnlyDictionary<string, ModernArchitecture> LoadArchitectures(IReadOnlyList<string> names)
    {
        string json = ReferencePython.Run(ArchitectureScript, names.ToArray());
        using var doc = JsonDocument.Parse(json);
        var result = new Dictionary<string, ModernArchitecture>();
        foreach (var entry in doc.RootElement.EnumerateObject())
        {
            var v = entry.Value;
            var c = v.GetProperty("config");
            result[entry.Name] = new ModernArchitecture(
                v.GetProperty("keys").EnumerateArray().Select(k => (k[0].GetString()!, k[1].EnumerateArray().Select(d => d.GetInt64()).ToArray())).ToArray(),
                v.GetProperty("params").GetInt64(), v.GetProperty("meta_params").GetInt64(), v.GetProperty("dropout").GetDouble(),
                v.GetProperty("drop_path").EnumerateArray().Select(d => d.GetDouble()).ToArray(),
                c.GetProperty("crop").GetInt32(), c.GetProperty("resize").GetInt32(),
                c.GetProperty("mean").EnumerateArray().Select(d => d.GetDouble()).ToArray(),
                c.GetProperty("std").EnumerateArray().Select(d => d.GetDouble()).ToArray(),
                c.GetProperty("interpolation").GetString()!, c.GetProperty("classes").GetInt32());
        }
        return result;
    }

    /// <summary>Asserts that <paramref name="model"/>'s state dict has torchvision's keys, in order, with its shapes.</summary>
    public static void AssertSameKeys(ModernArchitecture reference, Backbone model, string name)
    {
        var actual = model.state_dict().Select(e => (e.Key, e.Value.shape)).ToArray();
        var firstDifference = Enumerable.Range(0, Math.Min(actual.Length, reference.Keys.Count))
            .FirstOrDefault(i => actual[i].Key != reference.Keys[i].Key || !actual[i].shape.SequenceEqual(reference.Keys[i].Shape), -1);
        if (firstDifference < 0 && actual.Length != reference.Keys.Count) firstDifference = Math.Min(actual.Length, reference.Keys.Count);
        Assert.AreEqual(-1, firstDifference, firstDifference < 0 ? "" :
            $"{name} entry {firstDifference}: ours " +
            (firstDifference < actual.Length ? $"{actual[firstDifference].Key} [{string.Join(", ", actual[firstDifference].shape)}]" : "(none)") +
            ", torchvision " +
            (firstDifference < reference.Keys.Count ? $"{reference.Keys[firstDifference].Key} [{string.Join(", ", reference.Keys[firstDifference].Shape)}]" : "(none)") +
            $"; {actual.Length} vs {reference.Keys.Count} entries");
    }

    /// <summary>Asserts that the registered configuration equals torchvision's IMAGENET1K_V1 transforms.</summary>
    public static void AssertConfig(ModernArchitecture reference, PretrainedConfig config, string name)
    {
        Assert.AreEqual(new InputSize(3, reference.Crop, reference.Crop), config.InputSize, name);
        Assert.AreEqual((double)reference.Crop / reference.Resize, config.CropPct, 1e-12, $"{name}: crop_pct = crop / resize");
        CollectionAssert.AreEqual(reference.Mean, config.Mean.ToArray(), name);
        CollectionAssert.AreEqual(reference.Std, config.Std.ToArray(), name);
        Assert.AreEqual(reference.Interpolation, config.Interpolation, name);
        Assert.AreEqual(reference.Classes, config.NumClasses, name);
        var keys = reference.Keys.Select(k => k.Key).ToHashSet();
        Assert.Contains(config.FirstConv + ".weight", keys, name);
        Assert.Contains(config.Classifier + ".weight", keys, name);
        Assert.AreEqual(reference.Classes, reference.Keys.Single(k => k.Key == config.Classifier + ".weight").Shape[0], name);
    }

    /// <summary>Stochastic-depth probabilities of a model, in module order.</summary>
    public static double[] DropPathRates(Backbone model) =>
        model.named_modules().Select(m => m.module).OfType<StochasticDepth>().Select(s => s.Probability).ToArray();

    /// <summary>
    /// Makes the parity fixtures of <paramref name="cases"/> with one Python process. The hooks capture, for each case, every
    /// feature stage (by our <see cref="Backbone.FeatureInfo"/> module names), the features, the classifier's input (pre-logits).
    /// </summary>
    public static IReadOnlyDictionary<string, ParityFixture> MakeFixtures(IReadOnlyList<ParityCase> cases)
    {
        var temp = new TempDirectory();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => temp.Dispose();
        var spec = cases.Select(c =>
        {
            using var model = CreateOnMeta(c.Name);
            var hooks = model.FeatureInfo.Select((f, i) => new object[] { $"stage{i}", f.ModuleName, "out" }).ToList();
            hooks.Add(["features", c.FeaturesModule, c.FeaturesHook]);
            hooks.Add(["pre_logits", model.PretrainedConfig.Classifier, "in"]);
            var entry = new Dictionary<string, object> { ["id"] = c.Id, ["name"] = c.Name, ["size"] = c.Size, ["batch"] = c.Batch, ["hooks"] = hooks };
            if (c.ResampleSize is { } size) entry["resample"] = new Dictionary<string, int> { ["size"] = size, ["patch"] = c.Patch };
            return entry;
        }).ToArray();
        string specPath = temp.File("spec.json");
        File.WriteAllText(specPath, JsonSerializer.Serialize(spec));
        ReferencePython.Run(ParityScript, specPath, temp.Path);
        return cases.ToDictionary(c => c.Id, c => new ParityFixture(Path.Combine(temp.Path, c.Id)));
    }

    /// <summary>Builds a registered model with default options on the meta device (no storage).</summary>
    public static Backbone CreateOnMeta(string name)
    {
        // The registry builds on the default device; a family's factory is reached through its definition for META.
        var definition = typeof(ModelRegistry).Assembly.GetTypes()
            .Where(t => typeof(IModelFamily).IsAssignableFrom(t) && t.IsClass && !t.IsAbstract)
            .SelectMany(t => ((IModelFamily)Activator.CreateInstance(t)!).Models)
            .Single(d => d.Name == name);
        return definition.Factory(new ModelOptions(), META);
    }

    /// <summary>
    /// Loads the fixture's weights strictly into the registered model and checks every stage, the features, pre-logits and
    /// logits against torchvision's in eval mode.
    /// </summary>
    public static void AssertParity(ParityCase c, ParityFixture fixture)
    {
        using var model = ModelRegistry.Create(c.Name);
        var report = model.LoadWeights(fixture.WeightsPath, strict: true);
        Assert.IsTrue(report.IsComplete, report.ToString());
        Assert.AreEqual(model.state_dict().Count, report.Loaded);
        model.eval();
        using var outputs = WeightFile.Load(fixture.OutputsPath);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var input = outputs["input"];
        var stages = model.ForwardStages(input);
        Assert.HasCount(model.FeatureInfo.Count, stages);
        for (int i = 0; i < stages.Count; i++)
            ResNetReference.AssertClose(outputs[$"stage{i}"], stages[i], $"{c.Id} {model.FeatureInfo[i].ModuleName}");
        var features = model.ForwardFeatures(input);
        ResNetReference.AssertClose(outputs["features"], features, $"{c.Id} features");
        ResNetReference.AssertClose(outputs["pre_logits"], model.ForwardHead(features, preLogits: true), $"{c.Id} pre_logits");
        ResNetReference.AssertClose(outputs["logits"], model.forward(input), $"{c.Id} logits");
    }

    /// <summary>Files made by the parity script for one case.</summary>
    internal sealed record ParityFixture(string Directory)
    {
        public string WeightsPath => Path.Combine(Directory, "weights.pth");
        public string OutputsPath => Path.Combine(Directory, "outputs.safetensors");
    }

    /// <summary>
    /// One parity case: a registered model at an input size. <paramref name="FeaturesModule"/> and <paramref name="FeaturesHook"/>
    /// say where torchvision's model produces our <see cref="Backbone.ForwardFeatures"/> output (<c>"in"</c>: the module's input,
    /// <c>"out"</c>: its output).
    /// </summary>
    internal sealed record ParityCase(string Name, int Size, string FeaturesModule, string FeaturesHook, int Batch = 2, int? ResampleSize = null, int Patch = 16)
    {
        public string Id => $"{Name}_{Size.ToString(CultureInfo.InvariantCulture)}";
    }
}

/// <summary>torchvision's description of one variant.</summary>
internal sealed record ModernArchitecture(
    IReadOnlyList<(string Key, long[] Shape)> Keys, long Parameters, long MetaParameters, double Dropout, double[] DropPath,
    int Crop, int Resize, double[] Mean, double[] Std, string Interpolation, int Classes);
