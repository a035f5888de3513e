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
            import torch, torchvision
            m = torchvision.models.resnet18().eval()
            acts, rows = [], []
            def hook(mod, inp, out):
                acts.append(out[0].numel()); rows.append(type(mod).__name__)
            for name, mod in m.named_modules():
                if name and not isinstance(mod, (torch.nn.Sequential, torch.nn.ModuleList)):
                    mod.register_forward_hook(hook)
            with torch.no_grad():
                m(torch.randn(2, 3, 64, 64))
            total = sum(p.numel() for p in m.parameters())
            print(total, len(rows), "%.2f" % (2 * sum(acts) * 4 / 1024 ** 2))
            """);
        var parts = reference.Trim().Split(' ');
        StringAssert.Contains(output, $"Total params: {long.Parse(parts[0]):N0}");
        StringAssert.Contains(output, $"Trainable params: {long.Parse(parts[0]):N0}");
        StringAssert.Contains(output, "Non-trainable params: 0");
        StringAssert.Contains(output, $"Forward/backward pass size (MB): {parts[2]}");
        var lines = output.Split('\n');
        int first = Array.FindIndex(lines, l => l.StartsWith("====", StringComparison.Ordinal));
        int second = Array.FindIndex(lines, first + 1, l => l.StartsWith("====", StringComparison.Ordinal));
        Assert.AreEqual(int.Parse(parts[1]), second - first - 1, "one row per hooked module, as torchsummary");
        StringAssert.Contains(output, "[-1, 512, 2, 2]");
    }

    [TestMethod]
    public void UnknownModelGivesOneLineAndNonZeroExit()
    {
        var (exit, output, error) = Run("summary", "resnet5O");
        Assert.AreNotEqual(0, exit);
        Assert.AreEqual(1, error.Trim().Split('\n').Length, error);
        StringAssert.Contains(error, "resnet5O");
        Assert.IsFalse(error.Contains("   at ", StringComparison.Ordinal), "no stack trace");
    }

    [TestMethod]
    public void BadInputShapeIsAUsageError()
    {
        var (exit, _, error) = Run("summary", "resnet18", "--input", "3x224");
        Assert.AreEqual(2, exit);
        StringAssert.Contains(error, "CxHxW");
    }
}
