using Cnn.Backbones.Models;
using Cnn.Backbones.Weights;
using System.Reflection;
using Cnn.Tests.Shared;
using TorchSharp;

namespace Cnn.MLNet.Tests.Cli;

[TestClass]
public sealed class ImportCommandTests
{
    // torchvision's resnet18 (seeded, BatchNorm statistics randomised) exported with torch.onnx.export in eval mode, and
    // torchvision's logits on a fixed input as raw float32 (input first).
    private const string Export = """
        import sys, torch, torchvision
        out = sys.argv[1]
        torch.manual_seed(0)
        model = torchvision.models.resnet18()
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.3, 0.3)
                    m.running_var.uniform_(0.5, 2.0)
        model.eval()
        x = torch.randn(1, 3, 48, 48, generator=torch.Generator().manual_seed(5))
        torch.onnx.export(model, x, out + "/resnet18.onnx", opset_version=13, input_names=["image"], output_names=["logits"])
        with torch.no_grad():
            y = model(x)
        with open(out + "/reference.bin", "wb") as f:
            f.write(x.numpy().tobytes()); f.write(y.numpy().tobytes())
        """;

    private static TempDirectory? _dir;

    [ClassInitialize]
    public static void MakeFixture(TestContext _)
    {
        _dir = new TempDirectory();
        ReferencePython.Run(Export, _dir.Path);
    }

    [ClassCleanup]
    public static void RemoveFixture() => _dir?.Dispose();

    [TestMethod]
    public void Import_PrintsMappingAndVerification_WritesWeightsUsableAsWeightsPath()
    {
        string onnx = _dir!.File("resnet18.onnx");
        string output = _dir.File("imported.safetensors");
        string text = CliHost.Succeed("import", onnx, "--model", "resnet18", "--output", output);

        StringAssert.Contains(text, "onnx tensor");
        StringAssert.Matches(text, new System.Text.RegularExpressions.Regex(@"onnx::Conv_\d+ \[64\] +-> layer1\.0\.bn1\.bias \[64\] +the folded Conv's bias"));
        StringAssert.Matches(text, new System.Text.RegularExpressions.Regex(@"- +-> layer1\.0\.bn1\.running_mean \[64\] +0 \(BatchNorm folded into the ONNX Conv\)"));
        StringAssert.Contains(text, "fc.weight [1000, 512]           -> fc.weight [1000, 512]");
        StringAssert.Contains(text, "verified: 21 layers and the output agree with ONNX Runtime");
        StringAssert.Contains(text, $"wrote {output} (122 tensors, resnet18, 1000 classes)");
        Assert.AreEqual(WeightFile.Format.SafeTensors, WeightFile.Detect(output));

        // The file works wherever --weights does: ModelOptions.WeightsPath, and it computes torchvision's logits.
        byte[] reference = File.ReadAllBytes(_dir.File("reference.bin"));
        float[] values = new float[reference.Length / 4];
        Buffer.BlockCopy(reference, 0, values, 0, reference.Length);
        using var model = ModelRegistry.Create("resnet18", new ModelOptions { WeightsPath = output });
        model.eval();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var input = torch.tensor(values[..(3 * 48 * 48)], new long[] { 1, 3, 48, 48 });
        var expected = torch.tensor(values[(3 * 48 * 48)..], new long[] { 1, 1000 });
        var logits = model.call(input);
        double scale = expected.abs().max().item<float>();
        double diff = (logits - expected).abs().max().item<float>();
        Assert.IsTrue(diff <= 1e-4 * scale, $"max |ours - torchvision| = {diff} of {scale}");
    }

    [TestMethod]
    public void Import_MlNetFeaturizerWithItsPreprocessing_ReportsBlockCountsAndConfig()
    {
        string? package = typeof(ImportCommandTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "DnnImageFeaturizerResNet18")?.Value;
        Assert.IsTrue(Directory.Exists(package), $"Microsoft.ML.DnnImageFeaturizer.ResNet18 is not in the NuGet cache ('{package}'); run dotnet restore.");
        string models = Path.Combine(package!, "tools", "DnnImageModels");
        string output = _dir!.File("mlnet-resnet18.safetensors");
        string text = CliHost.Succeed("import", Path.Combine(models, "ResNet18Onnx", "ResNet18.onnx"), "--model", "resnet18",
            "--preprocess", Path.Combine(models, "ResNetPrepOnnx", "ResNetPreprocess.onnx"), "--output", output);

        StringAssert.Contains(text, "Parameter");
        StringAssert.Contains(text, "verified: 22 layers and the output agree");
        StringAssert.Contains(text, "block counts: [2, 2, 2, 3]");
        StringAssert.Contains(text, "std [0.00392157, 0.00392157, 0.00392157], input 224x224; channel order folded into conv1");
        StringAssert.Contains(text, "with both graphs in ONNX Runtime on a random image: relative difference");
        StringAssert.Contains(text, "no classifier");

        using var weights = Cnn.Backbones.Weights.WeightFile.Load(output);
        Assert.AreEqual("2,2,2,3", weights.Metadata["cnn.block_counts"]);
        Assert.AreEqual("2,1,0", weights.Metadata["cnn.channel_order_folded"]);
        using var model = ModelRegistry.Create("resnet18", new ModelOptions { NumClasses = 0, BlockCounts = [2, 2, 2, 3], WeightsPath = output });
        Assert.AreEqual(0, model.NumClasses);
    }

    [TestMethod]
    public void Import_Refusals_AreOneLineErrors()
    {
        string onnx = _dir!.File("resnet18.onnx");
        string output = _dir.File("refused.safetensors");

        string wrong = CliHost.FailOneLine(1, "import", onnx, "--model", "resnet50", "--output", output);
        StringAssert.Contains(wrong, onnx);
        StringAssert.Contains(wrong, "layer1.0.conv1");
        StringAssert.Contains(CliHost.FailOneLine(1, "import", onnx, "--model", "resnet34", "--output", output), "Import it as resnet18 (cnn import --model resnet18)");
        Assert.IsFalse(File.Exists(output), "nothing is written when the mapping fails");

        StringAssert.Contains(CliHost.FailOneLine(2, "import", onnx), "missing required option --model");
        StringAssert.Contains(CliHost.FailOneLine(1, "import", _dir.File("absent.onnx"), "--model", "resnet18"), "absent.onnx");
        StringAssert.Contains(CliHost.FailOneLine(2, "import", onnx, "--model", "resnet19"), "did you mean resnet18");
        StringAssert.Contains(CliHost.FailOneLine(2, "import", onnx, "--model", "resnet18", "--transform-input", "maybe"), "--transform-input");
    }
}
