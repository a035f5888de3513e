using Cnn.Backbones.Models;
using Cnn.Cli;
using Cnn.Tests.Shared;

namespace Cnn.MLNet.Tests.Cli;

[TestClass]
public sealed class ModelsAndSummaryCommandTests
{
    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = CliApp.Run(args, stdout, stderr);
        return (exit, stdout.ToString(), stderr.ToString());
    }

    [TestMethod]
    public void ModelsListsEveryRegisteredArchitectureWithItsParameterCount()
    {
        var (exit, output, error) = Run("models");
        Assert.AreEqual(0, exit, error);
        foreach (var model in ModelRegistry.List())
            StringAssert.Contains(output, $"{model.ParameterCount:N0}", model.Name);
        StringAssert.Contains(output, "resnet50");
    }

    [TestMethod]
    public void SummaryMatchesTorchsummaryTotalsComputedByTorchvision()
    {
        var (exit, output, error) = Run("summary", "resnet18", "--input", "3x64x64");
        Assert.AreEqual(0, exit, error);
        // Reference: torchvision's resnet18 with forward hooks on every non-container module (torchsummary's rule).
        string reference = ReferencePython.Run("""
            import json, torch, torchvision
            m = torchvision.models.resnet18().eval()
            rows = []
            def hook(name):
                def record(mod, inp, out):
                    rows.append([name, [-1] + list(out.shape[1:]), sum(p.numel() for p in mod.parameters(recurse=False)), out[0].numel()])
                return record
            for name, mod in m.named_modules():
                if name and not isinstance(mod, (torch.nn.Sequential, torch.nn.ModuleList)):
                    mod.register_forward_hook(hook(name))
            with torch.no_grad():
                m(torch.randn(2, 3, 64, 64))
            print(json.dumps({"total": sum(p.numel() for p in m.parameters()), "rows": rows}))
            """);
        using var json = System.Text.Json.JsonDocument.Parse(reference);
        long total = json.RootElement.GetProperty("total").GetInt64();
        var expected = json.RootElement.GetProperty("rows").EnumerateArray()
            .Select(r => (Name: r[0].GetString()!, Shape: "[" + string.Join(", ", r[1].EnumerateArray().Select(d => d.GetInt64())) + "]", Params: r[2].GetInt64(), Values: r[3].GetInt64()))
            .ToList();
        StringAssert.Contains(output, $"Total params: {total:N0}");
        StringAssert.Contains(output, $"Trainable params: {total:N0}");
        StringAssert.Contains(output, "Non-trainable params: 0");

        var lines = output.Split('\n');
        int first = Array.FindIndex(lines, l => l.StartsWith("====", StringComparison.Ordinal));
        int second = Array.FindIndex(lines, first + 1, l => l.StartsWith("====", StringComparison.Ordinal));
        var rows = lines[(first + 1)..second]
            .Select(l => System.Text.RegularExpressions.Regex.Match(l, @"^(\S+)\s+(\S+)\s+(\[[-\d, ]+\])\s+([\d,]+)\s*$"))
            .Select(m => (Name: m.Groups[1].Value, Shape: m.Groups[3].Value, Params: long.Parse(m.Groups[4].Value, System.Globalization.NumberStyles.AllowThousands, System.Globalization.CultureInfo.InvariantCulture)))
            .ToList();
        // Layers with parameters are the same modules, in the same order, with the same output shapes and counts.
        CollectionAssert.AreEqual(
            expected.Where(r => r.Params > 0).Select(r => $"{r.Name} {r.Shape} {r.Params}").ToList(),
            rows.Where(r => r.Params > 0).Select(r => $"{r.Name} {r.Shape} {r.Params}").ToList());
        // Parameter-free rows differ only by naming (timm's 'act1' for the stem ReLU) and the functional global pool.
        Assert.AreEqual(expected.Count - 1, rows.Count, "every module but torchvision's avgpool module");
        Assert.AreEqual(expected[^1].Shape, rows[^1].Shape, "logits");
        double referenceMB = 2.0 * expected.Where(r => r.Name != "avgpool").Sum(r => r.Values) * 4 / (1024 * 1024);
        StringAssert.Contains(output, $"Forward/backward pass size (MB): {referenceMB:0.00}");
    }

    public static IEnumerable<object[]> SmallestOfEachFamily => FamilyCases.SmallestRows;

    /// <summary>
    /// The smallest variant of every registered family, summarised at the smallest input it takes (at least 32×32, its default
    /// channels): the total is the parameter count of the model built for that input (a ViT's position embedding follows it) with
    /// its pretrained configuration's classes, as the command builds it (a CLIP tower's: none, the embedding).
    /// </summary>
    [TestMethod]
    [DynamicData(nameof(SmallestOfEachFamily))]
    public void SummaryOfEveryFamilyTotalsTheRegisteredParameterCount(string name)
    {
        int size = FamilyCases.InputSize(name);
        var (exit, output, error) = Run("summary", name, "--input", $"{FamilyCases.InChannels(name)}x{size}x{size}");
        Assert.AreEqual(0, exit, error);
        var definition = ModelRegistry.GetDefinition(name);
        long expected;
        using (var meta = definition.Build((definition.DefaultOptions ?? new ModelOptions()) with { ImageSize = size, NumClasses = definition.DefaultConfig.NumClasses }, TorchSharp.torch.META))
            expected = meta.parameters().Sum(p => p.numel());
        StringAssert.Contains(output, $"Total params: {expected:N0}");
        var activations = System.Text.RegularExpressions.Regex.Match(output, @"Forward/backward pass size \(MB\): ([\d.]+)");
        Assert.IsTrue(activations.Success && double.Parse(activations.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) > 0, output);
    }

    [TestMethod]
    public void SummaryOfVgg16ListsTorchvisionsLayersWithShapesAndParameters()
    {
        var (exit, output, error) = Run("summary", "vgg16", "--input", "3x64x64");
        Assert.AreEqual(0, exit, error);
        // Reference: torchvision's vgg16 with forward hooks on every non-container module (values are irrelevant: no init).
        string reference = ReferencePython.Run("""
            import json, torch, torchvision
            for cls in (torch.nn.Conv2d, torch.nn.Linear):
                cls.reset_parameters = lambda self: None
            torch.nn.init.kaiming_normal_ = torch.nn.init.normal_ = torch.nn.init.constant_ = lambda t, *a, **k: t
            m = torchvision.models.vgg16().eval()
            rows = []
            def hook(name):
                def record(mod, inp, out):
                    rows.append([name, [-1] + list(out.shape[1:]), sum(p.numel() for p in mod.parameters(recurse=False))])
                return record
            for name, mod in m.named_modules():
                if name and not isinstance(mod, (torch.nn.Sequential, torch.nn.ModuleList)):
                    mod.register_forward_hook(hook(name))
            with torch.no_grad():
                m(torch.zeros(2, 3, 64, 64))
            print(json.dumps({"total": sum(p.numel() for p in m.parameters()), "rows": rows}))
            """);
        using var json = System.Text.Json.JsonDocument.Parse(reference);
        long total = json.RootElement.GetProperty("total").GetInt64();
        var expected = json.RootElement.GetProperty("rows").EnumerateArray()
            .Select(r => $"{r[0].GetString()} [{string.Join(", ", r[1].EnumerateArray().Select(d => d.GetInt64()))}] {r[2].GetInt64()}")
            .ToList();
        StringAssert.Contains(output, $"Total params: {total:N0}");
        var lines = output.Split('\n');
        int first = Array.FindIndex(lines, l => l.StartsWith("====", StringComparison.Ordinal));
        int second = Array.FindIndex(lines, first + 1, l => l.StartsWith("====", StringComparison.Ordinal));
        var rows = lines[(first + 1)..second]
            .Select(l => System.Text.RegularExpressions.Regex.Match(l, @"^(\S+)\s+(\S+)\s+(\[[-\d, ]+\])\s+([\d,]+)\s*$"))
            .Select(m => $"{m.Groups[1].Value} {m.Groups[3].Value} {long.Parse(m.Groups[4].Value, System.Globalization.NumberStyles.AllowThousands, System.Globalization.CultureInfo.InvariantCulture)}")
            .ToList();
        // Every torchvision layer (features.0..30, avgpool, classifier.0..6), in order, with its output shape and parameters.
        CollectionAssert.AreEqual(expected, rows);
    }

    [TestMethod]
    public void UnknownModelIsAUsageErrorNamingTheCloseMatches()
    {
        // A usage error (exit 2): the reason with the close matches, not the whole model list, then the usage line.
        string line = CliHost.FailOneLine(2, "summary", "resnet5O");
        StringAssert.Contains(line, "unknown model 'resnet5O'; did you mean resnet50");
        Assert.IsFalse(line.Contains("vgg11", StringComparison.Ordinal), "only the close matches: " + line);
        Assert.IsFalse(line.Contains("(Parameter", StringComparison.Ordinal), line);
    }

    [TestMethod]
    public void BadInputShapeIsAUsageError()
    {
        var (exit, _, error) = Run("summary", "resnet18", "--input", "3x224");
        Assert.AreEqual(2, exit);
        StringAssert.Contains(error, "CxHxW");
    }
}
