using Cnn.Backbones.Weights.Download;
using System.Text.Json;
using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.Backbones.Weights.Catalog;
using Cnn.Tests.Shared;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Weights;

/// <summary>
/// The weights catalog the families declare, driven by the registry: each entry's parameter count against the model built on the
/// meta device, its file name's hash prefix, one default per architecture, the lookup by name; and, at test time, every entry
/// against Debian's torchvision 0.14.1 (URL, num_params, categories, transforms, metrics, DEFAULT), every timm tag against
/// timm's <c>default_cfgs</c>, and the shipped ImageNet class names against torchvision's.
/// </summary>
[TestClass]
public sealed class WeightsCatalogTests
{
    private const string TorchvisionScript = """
        import json, math, sys
        from torchvision.models import get_model_weights, list_models
        from torchvision.models._meta import _IMAGENET_CATEGORIES

        def number(x):
            return None if isinstance(x, float) and math.isnan(x) else x

        known = set(list_models())
        models = {}
        for name in json.loads(sys.argv[1]):
            if name not in known:
                continue
            enum = get_model_weights(name)
            entries = []
            for w in enum:
                t = w.transforms()
                acc = w.meta["_metrics"]["ImageNet-1K"]
                entries.append({
                    "name": w.name, "url": w.url, "num_params": w.meta["num_params"], "categories": w.meta["categories"],
                    "recipe": w.meta["recipe"], "license": w.meta.get("license"), "acc1": number(acc["acc@1"]), "acc5": number(acc["acc@5"]),
                    "crop": t.crop_size[0], "resize": t.resize_size[0], "interpolation": t.interpolation.value,
                    "mean": list(t.mean), "std": list(t.std)})
            models[name] = {"default": enum.DEFAULT.name, "entries": entries}
        print(json.dumps({"models": models, "imagenet": list(_IMAGENET_CATEGORIES)}))
        """;

    private const string TimmScript = """
        import json, os, sys
        sys.dont_write_bytecode = True
        sys.path.insert(0, os.path.join(sys.argv[1], "timm"))
        sys.path.append(os.path.join(sys.argv[1], "shims"))
        import timm
        from timm.models import _registry
        cfgs = [{"name": name, "url": cfg.url or ""} for name, cfg in _registry._model_pretrained_cfgs.items() if "." in name]
        print(json.dumps(cfgs))
        """;

    private static readonly Lazy<JsonDocument> Torchvision = new(() =>
        JsonDocument.Parse(ReferencePython.Run(TorchvisionScript, JsonSerializer.Serialize(ModelRegistry.AllDefinitions.Select(d => d.Name).ToArray()))));

    /// <summary>The entries the families declare (other tests register entries of their own in this process).</summary>
    private static IReadOnlyList<CatalogEntry> Declared => WeightsCatalog.All.Where(e => e.Model.Weights.Contains(e.Entry)).ToArray();

    public static IEnumerable<object[]> Entries => Declared.Select(e => new object[] { e.QualifiedName });

    public static IEnumerable<object[]> ModelsWithEntries => ModelRegistry.AllDefinitions.Where(d => d.Weights.Count > 0).Select(d => new object[] { d.Name });

    [TestMethod]
    [DynamicData(nameof(Entries))]
    public void ParameterCountIsTheBuiltModels(string qualifiedName)
    {
        TorchRuntime.EnsureLoaded();
        var (model, entry) = WeightsCatalog.Find(qualifiedName);
        // The entry's class count and input size (the Vision Transformer's position embedding depends on it: SWAG E2E is 384/512 px).
        var options = (model.DefaultOptions ?? new ModelOptions()) with { NumClasses = entry.Config.NumClasses, ImageSize = entry.Config.InputSize.Height };
        using var built = model.Build(options, META);
        Assert.AreEqual(entry.Metadata.ParameterCount, built.parameters().Sum(p => p.numel()), qualifiedName);
    }

    [TestMethod]
    [DynamicData(nameof(Entries))]
    public void FileNameCarriesASha256PrefixOfAtLeastEightHexDigits(string qualifiedName)
    {
        var entry = WeightsCatalog.Find(qualifiedName).Entry;
        StringAssert.StartsWith(entry.Url, "https://", qualifiedName);
        Assert.IsTrue(entry.Sha256Prefix.Length >= 8 && entry.Sha256Prefix.All(Uri.IsHexDigit), $"{qualifiedName}: {entry.FileName}");
        StringAssert.Contains(entry.FileName, "-" + entry.Sha256Prefix + ".", StringComparison.OrdinalIgnoreCase, qualifiedName);
        foreach (var legacy in entry.LegacyFileNames)
            Assert.IsNotNull(WeightsEntry.HashPrefixOf(legacy), $"{qualifiedName}: legacy name {legacy}");
    }

    [TestMethod]
    public void MissingOrShortHashPrefixIsAnError()
    {
        var entry = Declared[0].Entry;
        foreach (string url in new[] { "https://example.org/models/resnet50.pth", "https://example.org/models/resnet50-11ad3fa.pth", "https://example.org/models/resnet50-zz11ad3fa6.pth" })
        {
            var bad = entry with { Url = url };
            var error = Assert.ThrowsExactly<FormatException>(() => bad.Sha256Prefix);
            StringAssert.Contains(error.Message, url);
        }
    }

    [TestMethod]
    public void EveryArchitectureWithEntriesHasExactlyOneDefaultAndDistinctNames()
    {
        Assert.IsNotEmpty(Declared);
        foreach (var model in ModelRegistry.AllDefinitions)
        {
            if (model.Weights.Count == 0)
            {
                Assert.IsNull(model.DefaultWeights, $"{model.Name}: a default without entries");
                continue;
            }
            Assert.AreEqual(1, model.Weights.Count(w => w.Name == model.DefaultWeights), $"{model.Name}: DEFAULT = {model.DefaultWeights}");
            Assert.AreEqual(model.Weights.Count, model.Weights.Select(w => w.Name.ToUpperInvariant()).Distinct().Count(), $"{model.Name}: entry names");
            var tags = model.Weights.Where(w => w.Metadata.TimmTag is not null).Select(w => w.Metadata.TimmTag!.ToLowerInvariant()).ToArray();
            Assert.AreEqual(tags.Length, tags.Distinct().Count(), $"{model.Name}: timm tags");
        }
    }

    [TestMethod]
    [DynamicData(nameof(ModelsWithEntries))]
    public void DefaultConfigIsTheEntryItsTagNames(string name)
    {
        var model = ModelRegistry.GetDefinition(name);
        var config = model.DefaultConfig;
        StringAssert.StartsWith(config.Tag, TorchvisionWeights.TagPrefix, name);
        var entry = model.FindWeights(config.Tag[TorchvisionWeights.TagPrefix.Length..]);
        AssertSameConfig(entry.Config, config, name);
    }

    [TestMethod]
    [DynamicData(nameof(Entries))]
    public void EntryConfigIsConsistentWithItsMetadata(string qualifiedName)
    {
        var (model, entry) = WeightsCatalog.Find(qualifiedName);
        Assert.AreEqual(TorchvisionWeights.TagPrefix + entry.Name, entry.Config.Tag, qualifiedName);
        Assert.AreEqual(model.DefaultConfig.FirstConv, entry.Config.FirstConv, qualifiedName);
        Assert.AreEqual(model.DefaultConfig.Classifier, entry.Config.Classifier, qualifiedName);
        Assert.AreEqual(entry.Config.InputSize.Height, entry.Config.InputSize.Width, qualifiedName);
        if (entry.Metadata.Categories.Count > 0)
            Assert.AreEqual(entry.Metadata.Categories.Count, entry.Config.NumClasses, $"{qualifiedName}: classifier outputs = categories");
    }

    [TestMethod]
    [DynamicData(nameof(Entries))]
    public void LookupFindsTheEntryByItsNamesAnyCase(string qualifiedName)
    {
        var (model, entry) = WeightsCatalog.Find(qualifiedName);
        Assert.AreSame(entry, model.FindWeights(entry.Name));
        Assert.AreSame(entry, model.FindWeights(entry.Name.ToLowerInvariant()));
        Assert.AreSame(entry, WeightsCatalog.Find(model.Name, entry.Name));
        Assert.AreSame(entry, WeightsCatalog.Find(model.Name.ToUpperInvariant() + "." + entry.Name.ToLowerInvariant()).Entry);
        if (entry.Name == model.DefaultWeights)
        {
            Assert.AreSame(entry, model.FindWeights(WeightsEntry.DefaultAlias));
            Assert.AreSame(entry, model.FindWeights("default"));
            Assert.AreSame(entry, WeightsCatalog.Find($"{model.Name}.DEFAULT").Entry);
        }
        if (entry.Metadata.TimmTag is { } tag)
        {
            Assert.AreSame(entry, model.FindWeights($"{model.Name}.{tag}"));
            var found = WeightsCatalog.Find($"{model.Name}.{tag.ToUpperInvariant()}");
            Assert.AreSame(model, found.Model);
            Assert.AreSame(entry, found.Entry);
            // A bare timm tag is not an entry name: the architecture must be named with it.
            Assert.ThrowsExactly<ArgumentException>(() => model.FindWeights(tag));
        }
    }

    [TestMethod]
    public void UnknownNamesAreErrorsListingTheAvailableOnes()
    {
        var models = ModelRegistry.AllDefinitions.Where(d => d.Weights.Count > 0).ToArray();
        var model = models.First(d => d.Weights.Any(w => w.Metadata.TimmTag is not null));
        var error = Assert.ThrowsExactly<ArgumentException>(() => model.FindWeights("NO_SUCH_WEIGHTS"));
        StringAssert.Contains(error.Message, "NO_SUCH_WEIGHTS");
        StringAssert.Contains(error.Message, $"DEFAULT (= {model.DefaultWeights})");
        foreach (var w in model.Weights)
        {
            StringAssert.Contains(error.Message, w.Name);
            if (w.Metadata.TimmTag is { } tag) StringAssert.Contains(error.Message, $"{model.Name}.{tag}");
        }

        var other = models.First(d => d.Name != model.Name);
        error = Assert.ThrowsExactly<ArgumentException>(() => model.FindWeights($"{other.Name}.{other.DefaultWeights}"));
        StringAssert.Contains(error.Message, other.Name);
        Assert.ThrowsExactly<ArgumentException>(() => WeightsCatalog.Find(model.Name + "."));
        Assert.ThrowsExactly<ArgumentException>(() => WeightsCatalog.Find(model.DefaultWeights!));
        Assert.ThrowsExactly<ArgumentException>(() => WeightsCatalog.Find("no_such_model.DEFAULT"));
        Assert.ThrowsExactly<ArgumentException>(() => model.FindWeights(" "));

        var without = ModelRegistry.AllDefinitions.FirstOrDefault(d => d.Weights.Count == 0 && !WeightsCatalog.All.Any(e => e.Model == d));
        if (without is not null)
        {
            error = Assert.ThrowsExactly<ArgumentException>(() => without.FindWeights(WeightsEntry.DefaultAlias));
            StringAssert.Contains(error.Message, "no published weights");
        }
    }

    [TestMethod]
    public void EntriesAreTorchvisions()
    {
        var models = Torchvision.Value.RootElement.GetProperty("models");
        Assert.IsNotEmpty(models.EnumerateObject().ToArray(), "torchvision knows none of the registered models");
        int compared = 0;
        foreach (var model in ModelRegistry.AllDefinitions)
        {
            if (!models.TryGetProperty(model.Name, out var expected))
            {
                Assert.IsEmpty(model.Weights, $"{model.Name}: catalog entries for a model torchvision 0.14.1 does not have");
                continue;
            }
            Assert.AreEqual(expected.GetProperty("default").GetString(), model.DefaultWeights, $"{model.Name}: DEFAULT");
            var names = expected.GetProperty("entries").EnumerateArray().Select(e => e.GetProperty("name").GetString()!).ToArray();
            CollectionAssert.AreEqual(names, model.Weights.Select(w => w.Name).ToArray(), $"{model.Name}: entries (torchvision's order)");
            foreach (var e in expected.GetProperty("entries").EnumerateArray())
            {
                var entry = model.Weights.Single(w => w.Name == e.GetProperty("name").GetString());
                AssertSameAsTorchvision(model.Name, entry, e);
                compared++;
            }
        }
        Assert.AreEqual(Declared.Count, compared, "every catalog entry is torchvision's");
    }

    [TestMethod]
    public void ImageNetCategoriesAreTorchvisions()
    {
        var expected = Torchvision.Value.RootElement.GetProperty("imagenet").EnumerateArray().Select(e => e.GetString()!).ToArray();
        Assert.HasCount(1000, expected);
        CollectionAssert.AreEqual(expected, ImageNetCategories.Names.ToArray());
    }

    [TestMethod]
    public void TimmTagsNameTheSameFilesInTimm()
    {
        string reference = ReferenceFolder();
        using var doc = JsonDocument.Parse(ReferencePython.Run(TimmScript, reference));
        var cfgs = doc.RootElement.EnumerateArray()
            .Select(e => (Name: e.GetProperty("name").GetString()!, Url: e.GetProperty("url").GetString()!))
            .Select(c => (Arch: c.Name[..c.Name.IndexOf('.', StringComparison.Ordinal)], Tag: c.Name[(c.Name.IndexOf('.', StringComparison.Ordinal) + 1)..], c.Url))
            .ToArray();
        Assert.IsGreaterThan(1000, cfgs.Length, "timm's pretrained configurations");
        int tagged = 0;
        foreach (var (model, entry) in Declared)
        {
            var sameFile = cfgs.Where(c => c.Url == entry.Url).ToArray();
            string[] archs = [model.Name, .. model.TimmNames];
            if (entry.Metadata.TimmTag is not { } tag)
            {
                Assert.IsEmpty(sameFile, $"{model.Name}.{entry.Name}: timm publishes its file as {string.Join(", ", sameFile.Select(c => $"{c.Arch}.{c.Tag}"))}; set TimmTag");
                continue;
            }
            tagged++;
            if (sameFile.Length > 0)
                CollectionAssert.Contains(sameFile.Select(c => c.Tag).ToArray(), tag, $"{model.Name}.{entry.Name}: timm's tags for {entry.FileName}");
            else
                Assert.IsTrue(cfgs.Any(c => c.Url.Length == 0 && c.Tag == tag && archs.Contains(c.Arch)),
                    $"{model.Name}.{entry.Name}: timm has no '{model.Name}.{tag}' (nor a configuration with URL {entry.Url})");
        }
        Assert.IsGreaterThan(0, tagged);

        // Every torchvision re-upload timm lists under one of our architectures' names is tagged in the catalog.
        foreach (var model in ModelRegistry.AllDefinitions.Where(d => d.Weights.Count > 0))
        {
            foreach (var c in cfgs.Where(c => (c.Arch == model.Name || model.TimmNames.Contains(c.Arch)) && c.Tag.StartsWith("tv", StringComparison.Ordinal)))
            {
                if (c.Url.Length > 0 && !c.Url.StartsWith(WeightStoreOptions.TorchvisionBaseUrl.GetLeftPart(UriPartial.Authority), StringComparison.Ordinal)) continue;
                bool found = model.Weights.Any(w => w.Metadata.TimmTag == c.Tag && (c.Url.Length == 0 || c.Url == w.Url));
                // timm's inception_v3.tv_in1k names an older upload (inception_v3_google-1a9a5a14.pth), not torchvision's current file.
                if (!found && c.Url.Length > 0 && model.Weights.All(w => w.Url != c.Url)) continue;
                Assert.IsTrue(found, $"timm's {c.Arch}.{c.Tag} ({(c.Url.Length > 0 ? c.Url : "hub only")}) has no catalog entry of {model.Name} tagged '{c.Tag}'");
            }
        }
    }

    private static void AssertSameAsTorchvision(string model, WeightsEntry entry, JsonElement e)
    {
        string what = $"{model}.{entry.Name}";
        string url = e.GetProperty("url").GetString()!;
        if (entry.Url != url)
        {
            // Only a documented rename may differ (efficientnet's V1 files, vision PR #8036): same folder, the old name is a legacy name.
            string oldName = url[(url.LastIndexOf('/') + 1)..];
            CollectionAssert.Contains(entry.LegacyFileNames.ToArray(), oldName, $"{what}: URL {entry.Url}, torchvision 0.14.1 has {url}");
            Assert.AreEqual(url[..(url.LastIndexOf('/') + 1)], entry.Url[..(entry.Url.LastIndexOf('/') + 1)], what);
        }
        else
        {
            Assert.IsEmpty(entry.LegacyFileNames, $"{what}: torchvision 0.14.1 still uses the file name");
        }
        Assert.AreEqual(e.GetProperty("num_params").GetInt64(), entry.Metadata.ParameterCount, $"{what}: num_params");
        Assert.AreEqual(e.GetProperty("recipe").GetString(), entry.Metadata.Recipe, $"{what}: recipe");
        Assert.AreEqual(e.GetProperty("license").GetString(), entry.Metadata.License, $"{what}: license");
        AssertMetric(e.GetProperty("acc1"), entry.Metadata.Acc1, $"{what}: acc@1");
        AssertMetric(e.GetProperty("acc5"), entry.Metadata.Acc5, $"{what}: acc@5");

        var categories = e.GetProperty("categories");
        if (categories.ValueKind == JsonValueKind.Null)
        {
            Assert.IsEmpty(entry.Metadata.Categories, $"{what}: torchvision lists no categories");
            Assert.AreEqual(1000, entry.Config.NumClasses, $"{what}: the file's classifier keeps the 1000 outputs");
        }
        else
        {
            CollectionAssert.AreEqual(categories.EnumerateArray().Select(c => c.GetString()).ToArray(), entry.Metadata.Categories.ToArray(), $"{what}: categories");
            Assert.AreEqual(categories.GetArrayLength(), entry.Config.NumClasses, $"{what}: classes");
        }

        var config = entry.Config;
        int crop = e.GetProperty("crop").GetInt32(), resize = e.GetProperty("resize").GetInt32();
        Assert.AreEqual(new InputSize(3, crop, crop), config.InputSize, $"{what}: crop_size");
        Assert.AreEqual(resize, (int)Math.Round(crop / config.CropPct), $"{what}: resize_size");
        Assert.AreEqual((double)crop / resize, config.CropPct, $"{what}: crop_pct = crop / resize");
        Assert.AreEqual(e.GetProperty("interpolation").GetString(), config.Interpolation, $"{what}: interpolation");
        CollectionAssert.AreEqual(e.GetProperty("mean").EnumerateArray().Select(x => x.GetDouble()).ToArray(), config.Mean.ToArray(), $"{what}: mean");
        CollectionAssert.AreEqual(e.GetProperty("std").EnumerateArray().Select(x => x.GetDouble()).ToArray(), config.Std.ToArray(), $"{what}: std");
    }

    private static void AssertMetric(JsonElement expected, double actual, string what)
    {
        if (expected.ValueKind == JsonValueKind.Null) Assert.IsTrue(double.IsNaN(actual), $"{what}: torchvision publishes none (NaN)");
        else Assert.AreEqual(expected.GetDouble(), actual, what);
    }

    private static void AssertSameConfig(PretrainedConfig expected, PretrainedConfig actual, string what)
    {
        Assert.AreEqual(expected.InputSize, actual.InputSize, what);
        CollectionAssert.AreEqual(expected.Mean.ToArray(), actual.Mean.ToArray(), what);
        CollectionAssert.AreEqual(expected.Std.ToArray(), actual.Std.ToArray(), what);
        Assert.AreEqual(expected.CropPct, actual.CropPct, what);
        Assert.AreEqual(expected.Interpolation, actual.Interpolation, what);
        Assert.AreEqual(expected.FirstConv, actual.FirstConv, what);
        Assert.AreEqual(expected.Classifier, actual.Classifier, what);
        Assert.AreEqual(expected.NumClasses, actual.NumClasses, what);
        Assert.AreEqual(expected.Tag, actual.Tag, what);
    }

    /// <summary>The reference oracles' folder: <c>shared/reference</c> beside the repository (or inside it, as CI lays it out).</summary>
    private static string ReferenceFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (!File.Exists(Path.Combine(dir.FullName, "Cnn.MLNet.sln"))) continue;
            foreach (string candidate in new[] { Path.Combine(dir.FullName, "..", "shared", "reference"), Path.Combine(dir.FullName, "shared", "reference") })
                if (Directory.Exists(Path.Combine(candidate, "timm", "timm"))) return Path.GetFullPath(candidate);
            Assert.Fail($"timm's source (the test oracle) is missing: expected shared/reference/timm beside or inside {dir.FullName} (see shared/reference/README.md).");
        }
        Assert.Fail($"No Cnn.MLNet.sln above {AppContext.BaseDirectory}.");
        return "";
    }

    [TestMethod]
    public void EveryEntryHasAPublishedFileSizeThatFitsItsParameterCount()
    {
        // A float32 checkpoint holds 4 bytes a parameter plus BatchNorm buffers and pickle framing, and some files also carry heads
        // the model leaves out (GoogLeNet's auxiliary classifiers, about as large as the rest), while a few are stored in float16
        // (wide_resnet50_2's V1): between 0.45 and 2.2 times 4 * num_params.
        foreach (var (model, entry) in Declared)
        {
            Assert.IsNotNull(entry.Metadata.FileSizeMegabytes, $"{model.Name} {entry.Name}: no published file size");
            double bytes = entry.Metadata.FileSizeMegabytes!.Value * 1024 * 1024;
            double expected = 4.0 * entry.Metadata.ParameterCount;
            Assert.IsTrue(bytes / expected is > 0.45 and < 2.2,
                $"{model.Name} {entry.Name}: {entry.Metadata.FileSizeMegabytes} MB is not about 4 bytes × {entry.Metadata.ParameterCount:N0} parameters");
        }
    }
}
