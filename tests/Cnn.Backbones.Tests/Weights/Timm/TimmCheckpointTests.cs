using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Cnn.Backbones.Compute;
using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.Backbones.Tests.Models;
using Cnn.Backbones.Weights;
using Cnn.Backbones.Weights.Timm;
using Cnn.Tests.Shared;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Weights.Timm;

/// <summary>
/// timm checkpoints, proven against timm itself (random init, same architecture): for the smallest variant of every timm
/// architecture kind the registry declares (every definition with a <see cref="ModelDefinition.TimmKeyMap"/>, grouped by key map
/// and timm name), timm's state dict (<c>.pth</c> and <c>.safetensors</c>) loads into ours, logits and <c>forward_features</c> equal
/// timm's, the hub <c>config.json</c> parses into the model's configuration, and ours saved in timm's layout loads into timm with
/// <c>strict=True</c> and gives the same logits.
/// </summary>
[TestClass]
public sealed partial class TimmCheckpointTests
{
    private static readonly Lazy<TimmOracle> Oracle = new(TimmOracle.Start);

    [ClassCleanup]
    public static void StopOracle()
    {
        if (Oracle.IsValueCreated) Oracle.Value.Dispose();
    }

    /// <summary>Every definition with a timm key map.</summary>
    private static IEnumerable<ModelDefinition> Mapped()
    {
        TorchRuntime.EnsureLoaded();
        return ModelRegistry.List().Select(i => ModelRegistry.GetDefinition(i.Name)).Where(d => d.TimmKeyMap is not null && d.TimmNames.Count > 0);
    }

    /// <summary>
    /// The smallest definition of each kind: the key map's name and the letters timm's name starts with (resnet, resnext,
    /// wide_resnet, efficientnet / efficientnetv2, regnetx / regnety, …).
    /// </summary>
    public static IEnumerable<object[]> Cases() =>
        Mapped()
            .GroupBy(d => (d.TimmKeyMap!.ToString(), LeadingLetters().Match(d.TimmNames[0]).Value))
            .Select(g => g.MinBy(d => ModelRegistry.Get(d.Name).ParameterCount)!)
            .OrderBy(d => ModelRegistry.Get(d.Name).ParameterCount)
            .Select(d => new object[] { d.Name, d.TimmNames[0] });

    private const long SafeTensorsLegMaxParameters = 30_000_000;

    [GeneratedRegex("^[a-z]+")]
    private static partial Regex LeadingLetters();

    [TestMethod]
    [DynamicData(nameof(Cases))]
    public void TimmCheckpointLoadsComputesTimmsOutputsAndSavesBack(string ours, string timmName)
    {
        var definition = ModelRegistry.GetDefinition(timmName);
        Assert.AreEqual(ours, definition.Name, $"timm's name {timmName} resolves to {ours}");
        using var folder = new TempDirectory();
        int size;
        using (var meta = definition.Build(definition.DefaultOptions ?? new ModelOptions(), META)) size = Math.Max(64, meta.MinInputSize);
        // The .safetensors leg (LoadPretrained) is the same conversion from another reader: only for the smaller models, to keep the class short.
        bool small = ModelRegistry.Get(ours).ParameterCount <= SafeTensorsLegMaxParameters;
        var made = Oracle.Value.Make(timmName, size, folder.Path, safetensors: small);

        // The hub config.json as timm writes it, parsed into this library's terms.
        var parsed = TimmPretrainedConfig.Load(folder.File("config.json"));
        Assert.AreSame(definition.Name, parsed.Definition.Name);
        AssertConfigIsTimms(made["pretrained_cfg"]!.AsObject(), parsed, definition);
        Assert.AreEqual(parsed.PretrainedConfig.NumClasses, parsed.LabelNames?.Count, "label_names");
        Assert.AreEqual("class_7", parsed.LabelNames![7]);

        using var io = WeightFile.Load(folder.File("io.pth"));
        foreach (var file in small ? new[] { "timm.pth", "timm.safetensors" } : ["timm.pth"])
        {
            using var model = definition.Build(parsed.Options);
            model.Compute = ComputeSettings.Float32;
            var report = file.EndsWith(".pth", StringComparison.Ordinal) ? model.LoadWeights(folder.File(file)) : model.LoadPretrained(folder.File(file));
            Assert.IsTrue(report.IsComplete, $"{file}: {report}");
            Assert.AreEqual((int)made["keys"]!, report.Loaded, $"{file}: every timm entry loaded");
            model.eval();
            if (definition.TimmKeyMap is RuleKeyMap { BatchNormEps: { } eps })
                Assert.IsTrue(model.modules().OfType<FoldableBatchNorm2d>().All(n => n.eps == eps), $"BatchNorm eps follows timm's checkpoint ({eps})");
            using (no_grad())
            using (var scope = NewDisposeScope())
            {
                TensorAssert.AssertClose(io["logits"], model.call(io["x"]), $"{ours} ← {timmName} {file}: logits", Tolerance(made, "logits"));
                TensorAssert.AssertClose(io["features"], model.ForwardFeatures(io["x"]), $"{ours} ← {timmName} {file}: forward_features", Tolerance(made, "features"));
            }
            if (file != "timm.pth") continue;

            // Ours saved in timm's layout: timm loads it with strict=True and computes the same logits.
            string back = folder.File("ours-in-timm-layout.safetensors");
            model.SaveWeights(back, WeightLayout.Timm);
            var check = Oracle.Value.Check(timmName, size, folder.Path, back);
            Assert.IsTrue((double)check["relative"]! <= 1e-4, $"{timmName} loaded from ours: logits differ by {check["relative"]} (relative)");
        }
    }

    /// <summary>
    /// 1e-4 relative, or twice timm's own float32 rounding error (its float32 outputs against its float64 ones) where the random
    /// network amplifies rounding beyond that (EfficientNetV2-S: about 1.6e-4); a wrong key map differs by far more.
    /// </summary>
    private static double Tolerance(JsonObject made, string output) => Math.Max(1e-4, 2 * (double)made["rounding"]![output]!);

    private static void AssertConfigIsTimms(JsonObject timm, TimmModelConfig parsed, ModelDefinition definition)
    {
        var config = parsed.PretrainedConfig;
        var input = timm["input_size"]!.AsArray().Select(v => (int)v!).ToArray();
        int expectedSize = parsed.Options.ImageSize ?? input[1];
        Assert.AreEqual(input[0], config.InputSize.Channels);
        Assert.AreEqual(expectedSize, config.InputSize.Height, "input size (model_args.img_size wins over the tag's)");
        CollectionAssert.AreEqual(timm["mean"]!.AsArray().Select(v => (double)v!).ToArray(), config.Mean.ToArray());
        CollectionAssert.AreEqual(timm["std"]!.AsArray().Select(v => (double)v!).ToArray(), config.Std.ToArray());
        Assert.AreEqual((double)timm["crop_pct"]!, config.CropPct);
        Assert.AreEqual((string)timm["interpolation"]!, config.Interpolation);
        Assert.AreEqual((int)timm["num_classes"]!, config.NumClasses);
        Assert.AreEqual(definition.DefaultConfig.FirstConv, config.FirstConv, "module names stay ours");
        Assert.AreEqual(definition.DefaultConfig.Classifier, config.Classifier);
    }

    /// <summary>Every variant (not only the smallest): ours → timm's layout → ours gives back every key and shape, and the timm layout is recognised.</summary>
    [TestMethod]
    public void EveryMappedVariantRoundTripsThroughTimmsLayout()
    {
        int maps = 0;
        foreach (var definition in Mapped())
        {
            using var model = definition.Build(definition.DefaultOptions ?? new ModelOptions(), META);
            using var own = new StateDict();
            foreach (var (k, v) in model.state_dict()) own.Add(k, v.alias());
            using var foreign = definition.TimmKeyMap!.ToForeign(own);
            using var back = definition.TimmKeyMap.ToOurs(foreign);
            CollectionAssert.AreEqual(own.Keys.ToArray(), back.Keys.ToArray(), definition.Name);
            foreach (var (k, v) in own) CollectionAssert.AreEqual(v.shape, back[k].shape, $"{definition.Name} {k}");
            Assert.IsFalse(definition.TimmKeyMap.IsForeignLayout(own.Keys.ToArray()), $"{definition.Name}: our keys are ours");
            if (definition.TimmKeyMap is RuleKeyMap { IsIdentity: false })
            {
                Assert.IsTrue(definition.TimmKeyMap.IsForeignLayout(foreign.Keys.ToArray()), $"{definition.Name}: timm's keys are recognised");
                maps++;
            }
        }
        Assert.IsTrue(maps >= 8, $"only {maps} renaming maps");
    }

    /// <summary>Variants up to 15M parameters (the larger kinds are covered by the parity test): our keys in timm's layout are exactly timm's keys and shapes for that timm name.</summary>
    [TestMethod]
    public void OurKeysInTimmsLayoutAreTimmsKeys()
    {
        var small = Mapped().Where(d => ModelRegistry.Get(d.Name).ParameterCount <= 15_000_000).ToArray();
        var timm = Oracle.Value.Keys(small.Select(d => d.TimmNames[0]))["models"]!.AsObject();
        foreach (var definition in small)
        {
            using var model = definition.Build(definition.DefaultOptions ?? new ModelOptions(), META);
            using var own = new StateDict();
            foreach (var (k, v) in model.state_dict()) own.Add(k, v.alias());
            using var foreign = definition.TimmKeyMap!.ToForeign(own);
            var expected = timm[definition.TimmNames[0]]!.AsArray()
                .Select(e => (Key: (string)e![0]!, Shape: string.Join(",", e[1]!.AsArray().Select(s => (long)s!))))
                .Where(e => !(definition.Name == "inception_v3" && e.Key.StartsWith("AuxLogits.", StringComparison.Ordinal)))
                .OrderBy(e => e.Key, StringComparer.Ordinal).ToArray();
            var actual = foreign.Select(e => (e.Key, Shape: string.Join(",", e.Value.shape)))
                .Where(e => !e.Key.StartsWith("AuxLogits.", StringComparison.Ordinal))
                .OrderBy(e => e.Key, StringComparer.Ordinal).ToArray();
            var missing = expected.Except(actual).Take(5).ToArray();
            var extra = actual.Except(expected).Take(5).ToArray();
            Assert.IsTrue(missing.Length == 0 && extra.Length == 0,
                $"{definition.Name} as {definition.TimmNames[0]}: timm has {string.Join("; ", missing)} — ours gives {string.Join("; ", extra)}");
        }
    }

    [TestMethod]
    public void TimmNamesAreAliasesAndOtherTimmVariantsAreRefusedWithTheReason()
    {
        TorchRuntime.EnsureLoaded();
        foreach (var definition in Mapped())
            foreach (var name in definition.TimmNames)
            {
                Assert.IsTrue(ModelRegistry.Exists(name), name);
                Assert.AreEqual(definition.Name, ModelRegistry.GetDefinition(name).Name, name);
                Assert.AreEqual(definition.Name, ModelRegistry.Get(name).Name, name);
            }
        Assert.AreEqual("mobilenet_v3_large", ModelRegistry.GetDefinition("MobileNetV3_Large_100").Name, "case-insensitive");
        foreach (var (name, reason) in new[] { ("tf_efficientnet_b0", "same"), ("regnetx_004", "regnetx_004_tv"), ("resnet50d", "stem"), ("mobilenetv3_large_075", "width") })
        {
            Assert.IsFalse(ModelRegistry.Exists(name), name);
            var error = Assert.ThrowsExactly<ArgumentException>(() => ModelRegistry.GetDefinition(name));
            StringAssert.Contains(error.Message, reason, name);
            StringAssert.Contains(error.Message, "not the same network", name);
        }
    }

    [TestMethod]
    public void AKeyNoRulePlacesIsAnErrorNamingIt()
    {
        TorchRuntime.EnsureLoaded();
        var definition = ModelRegistry.GetDefinition("efficientnet_b0");
        using var model = definition.Build(new ModelOptions(), META);
        using var own = new StateDict();
        foreach (var (k, v) in model.state_dict()) own.Add(k, v.alias());
        using var foreign = definition.TimmKeyMap!.ToForeign(own);
        foreign.Add("blocks.1.0.conv_extra.weight", zeros(3, device: META));
        foreign.Add("bogus.weight", zeros(3, device: META));
        var error = Assert.ThrowsExactly<CheckpointKeyMapException>(() => definition.TimmKeyMap.ToOurs(foreign));
        StringAssert.Contains(error.Message, "bogus.weight");
        StringAssert.Contains(error.Message, "blocks.1.0");
        CollectionAssert.Contains(error.UnplacedKeys.ToArray(), "bogus.weight");
    }

    [TestMethod]
    public void ConfigWithLabelDictAndUnknownArchitecture()
    {
        TorchRuntime.EnsureLoaded();
        var parsed = TimmPretrainedConfig.Parse("""
            {"architecture": "convnext_tiny", "num_classes": 3, "label_names": {"0": "cat", "2": "dog", "1": "cow"},
             "pretrained_cfg": {"tag": "in12k_ft_in1k", "input_size": [3, 288, 288], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
                                "crop_pct": 1.0, "interpolation": "bicubic", "crop_mode": "squash", "num_classes": 3}}
            """);
        Assert.AreEqual("convnext_tiny", parsed.Definition.Name);
        CollectionAssert.AreEqual(new[] { "cat", "cow", "dog" }, parsed.LabelNames!.ToArray());
        Assert.AreEqual(3, parsed.Options.NumClasses);
        Assert.AreEqual(288, parsed.Options.ImageSize);
        Assert.AreEqual("bicubic", parsed.PretrainedConfig.Interpolation);
        Assert.AreEqual("squash", parsed.CropMode);
        Assert.AreEqual("timm convnext_tiny.in12k_ft_in1k", parsed.PretrainedConfig.Tag);
        Assert.AreEqual("features.0.0", parsed.PretrainedConfig.FirstConv);

        var refused = Assert.ThrowsExactly<InvalidDataException>(() => TimmPretrainedConfig.Parse("""{"architecture": "tf_efficientnet_b3", "pretrained_cfg": {}}""", "hub/config.json"));
        StringAssert.Contains(refused.Message, "hub/config.json");
        StringAssert.Contains(refused.Message, "tf_efficientnet_b3");
        var inception = TimmPretrainedConfig.Parse("""{"architecture": "inception_v3", "pretrained_cfg": {"input_size": [3, 299, 299]}}""");
        Assert.IsFalse(inception.Options.AuxLogits!.Value, "timm's Inception v3 has no auxiliary head");
        Assert.IsFalse(inception.Options.TransformInput!.Value, "nor torchvision's input transform");
    }
}
