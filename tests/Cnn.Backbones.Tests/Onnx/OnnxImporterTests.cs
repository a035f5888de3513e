using Cnn.Backbones.Models;
using Cnn.Backbones.Onnx;
using Cnn.Backbones.Tests.Models;
using Cnn.Backbones.Weights;
using Cnn.Tests.Shared;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Onnx;

[TestClass]
public sealed class OnnxImporterTests
{
    /// <summary>
    /// Exports torchvision's model, imports it, and checks that the imported weights make our model compute torchvision's output on
    /// another input than the importer's verification used (batch of 2, the export's batch was 1).
    /// </summary>
    private static OnnxImportReport ImportAndCompare(string name, int size, string kwargs = "", ModelOptions? options = null, double tolerance = 1e-4,
        int opset = 13, string prepare = "")
    {
        using var dir = new TempDirectory();
        OnnxReference.Export(dir.Path, name, size, kwargs, opset, prepare);
        return ImportAndCompare(dir, name, options, tolerance);
    }

    /// <summary>Imports <c>model.onnx</c> of <paramref name="dir"/> and compares our model's output with <c>reference.safetensors</c>.</summary>
    private static OnnxImportReport ImportAndCompare(TempDirectory dir, string name, ModelOptions? options, double tolerance = 1e-4)
    {
        using var result = OnnxImporter.Import(dir.File("model.onnx"), name, options);
        var report = result.Report;
        Assert.IsTrue(report.RelativeDifference <= 1e-4, $"{name}: verification difference {report.RelativeDifference}");
        Assert.AreEqual(result.Weights.Count, report.Entries.Count);

        using var reference = WeightFile.Load(dir.File("reference.safetensors"));
        using var model = ModelRegistry.Create(name, result.Options);
        model.LoadWeights(result.Weights);
        model.eval();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var output = model.call(reference["input"]);
        var expected = reference["output"];
        CollectionAssert.AreEqual(expected.shape, output.shape, name);
        double scale = expected.abs().max().item<float>();
        double diff = (output - expected).abs().max().item<float>();
        Console.WriteLine($"{name}: {report.Entries.Count} entries, {report.LayersCompared} layers; verification max |diff| {report.MaxAbsDifference:G3} " +
                          $"(relative {report.RelativeDifference:G3}); against torchvision {diff:G3} of {scale:G3}");
        Assert.IsTrue(diff <= tolerance * scale, $"{name}: max |ours - torchvision| = {diff} for outputs up to {scale}");
        return report;
    }

    [TestMethod]
    public void ResNet18_FoldedBatchNormIsUnfolded_OutputsEqualTorchvision()
    {
        var report = ImportAndCompare("resnet18", 64);
        Assert.AreEqual(1000, report.NumClasses);
        var bn = report.Entries.Single(e => e.StateDictKey == "layer1.0.bn1.running_var");
        Assert.IsNull(bn.OnnxTensor, "torch.onnx.export folds eval-mode BatchNorm into the Conv");
        var bias = report.Entries.Single(e => e.StateDictKey == "layer1.0.bn1.bias");
        Assert.IsNotNull(bias.OnnxTensor);
        var fc = report.Entries.Single(e => e.StateDictKey == "fc.weight");
        Assert.IsNotNull(fc.OnnxTensor);
        CollectionAssert.AreEqual(new long[] { 1000, 512 }, fc.OnnxShape!.ToArray(), "Gemm with transB=1 keeps torch's layout");
        Assert.AreEqual(42, report.Entries.Count(e => e.OnnxTensor is not null), "20 conv weights, 20 folded biases, fc weight and bias");
    }

    /// <summary>
    /// The smallest variant of every family whose own ONNX export imports: a family with a <see cref="ModelQuirks.NoOnnxImport"/>
    /// gap (ViT) has its refusal checked on its own export by <c>OnnxExportTests</c>, without a reference export at 224 px.
    /// </summary>
    public static IEnumerable<object[]> SmallestOfEachFamily =>
        FamilyCases.Smallest.Where(d => ModelQuirksTable.For(d.Name, d.Family).NoOnnxImport is null).Select(d => new object[] { d.Name });

    /// <summary>
    /// The smallest variant of every registered family: its reference (torchvision's model, or the parity tests' reference builder)
    /// exported at the size the reference takes (<see cref="ModelQuirks"/>), imported, and compared. Auxiliary classifiers do not
    /// run in an eval-mode export, so families that take them import without.
    /// </summary>
    [TestMethod]
    [DynamicData(nameof(SmallestOfEachFamily))]
    public void Family_ImportsAndEqualsTheReference(string name)
    {
        var definition = ModelRegistry.GetDefinition(name);
        var quirks = ModelQuirksTable.For(name, definition.Family);
        var defaults = definition.DefaultOptions ?? new ModelOptions();
        using var dir = new TempDirectory();
        OnnxReference.ExportReference(dir.Path, name, quirks.ExportSize ?? quirks.ParitySize ?? quirks.TestSize, defaults.InChannels);
        var options = definition.Capabilities.AuxLogits ? defaults with { AuxLogits = false } : definition.DefaultOptions;
        if (quirks.NoReferenceOnnxImport is { } why)
        {
            // Not importable yet (see the quirk): refused with a message naming the parameter it cannot pair.
            var refused = Assert.ThrowsExactly<OnnxImportException>(() => OnnxImporter.Import(dir.File("model.onnx"), name, options).Dispose());
            StringAssert.Contains(refused.Message, why[..why.IndexOf(':', StringComparison.Ordinal)]);
            return;
        }
        ImportAndCompare(dir, name, options);
    }

    [TestMethod]
    public void GoogLeNetAndInception_WithoutTransformInput()
    {
        var options = new ModelOptions { TransformInput = false }; // auxiliary classifiers are left out by default
        ImportAndCompare("googlenet", 64, "aux_logits=False, transform_input=False, init_weights=True", options);
        ImportAndCompare("inception_v3", 96, "aux_logits=False, transform_input=False, init_weights=True", options);
    }

    [TestMethod]
    public void AuxiliaryClassifiersAskedFor_AreRefusedAsNotInTheGraph()
    {
        using var dir = new TempDirectory();
        OnnxReference.Export(dir.Path, "googlenet", 64, "aux_logits=False, transform_input=False, init_weights=True");
        var ex = Assert.ThrowsExactly<OnnxImportException>(() =>
            OnnxImporter.Import(dir.File("model.onnx"), "googlenet", new ModelOptions { TransformInput = false, AuxLogits = true }).Dispose());
        StringAssert.Contains(ex.Message, "did not run in the traced forward pass");
        StringAssert.Contains(ex.Message, "aux1.");
        StringAssert.Contains(ex.Message, "ModelOptions.AuxLogits = false");
    }

    [TestMethod]
    public void WrongArchitecture_IsRefusedNamingTheFirstLayerWithoutCounterpart()
    {
        using var dir = new TempDirectory();
        OnnxReference.Export(dir.Path, "resnet18", 32);
        string path = dir.File("model.onnx");

        // Another variant of the family: its block counts say which one it is.
        var variant = Assert.ThrowsExactly<OnnxImportException>(() => OnnxImporter.Import(path, "resnet34").Dispose());
        StringAssert.Contains(variant.Message, path);
        StringAssert.Contains(variant.Message, "[2, 2, 2, 2] blocks per stage, which is resnet18, not resnet34 ([3, 4, 6, 3])");

        // Bottleneck blocks: the first layer without a counterpart is named.
        var other = Assert.ThrowsExactly<OnnxImportException>(() => OnnxImporter.Import(path, "resnet50").Dispose());
        StringAssert.Contains(other.Message, "Cannot map " + path + " onto resnet50");
        StringAssert.Contains(other.Message, "Conv2d 'layer1.0.conv1' [64, 64, 1, 1]");

        // Explicit block counts are used as given: resnet18's graph is a resnet34 with [2, 2, 2, 2].
        using var explicitCounts = OnnxImporter.Import(path, "resnet34", new ModelOptions { BlockCounts = [2, 2, 2, 2] });
        Assert.IsTrue(explicitCounts.Report.RelativeDifference <= 1e-4);
    }

    /// <summary>Exports resnet18 at 32×32 and applies a Python edit (<c>m</c> is the loaded ModelProto) to the file.</summary>
    private static void ExportEdited(TempDirectory dir, string edit)
    {
        OnnxReference.Export(dir.Path, "resnet18", 32);
        OnnxReference.Run("m = onnx.load(sys.argv[1])\n" + edit + "\nonnx.save(m, sys.argv[1])\n", dir.File("model.onnx"));
    }

    [TestMethod]
    public void DifferentOperationBetweenLayers_IsRefusedNamingTheLayerWhoseInputDiffers()
    {
        // Same weights and shapes, but the first residual Add becomes a Sub: the next block's first convolution sees other data.
        using var dir = new TempDirectory();
        ExportEdited(dir, "next(n for n in m.graph.node if n.op_type == 'Add').op_type = 'Sub'");
        var ex = Assert.ThrowsExactly<OnnxImportException>(() => OnnxImporter.Import(dir.File("model.onnx"), "resnet18").Dispose());
        StringAssert.Contains(ex.Message, "the input of Conv2d 'layer1.1.conv1'");
        StringAssert.Contains(ex.Message, dir.File("model.onnx"));
    }

    [TestMethod]
    public void LayerComputingSomethingElse_IsRefusedNamingTheFirstMismatch()
    {
        // The stem keeps its weights and output shape but pads asymmetrically: its output is the first mismatch.
        using var dir = new TempDirectory();
        ExportEdited(dir, """
            conv = next(n for n in m.graph.node if n.op_type == 'Conv')
            pads = next(a for a in conv.attribute if a.name == 'pads')
            del pads.ints[:]; pads.ints.extend([2, 2, 4, 4])
            """);
        var ex = Assert.ThrowsExactly<OnnxImportException>(() => OnnxImporter.Import(dir.File("model.onnx"), "resnet18").Dispose());
        StringAssert.Contains(ex.Message, "the first mismatch is the output of Conv2d 'conv1' [64, 3, 7, 7] + BatchNorm2d 'bn1'");
    }

    [TestMethod]
    public void OutputBeyondTolerance_IsNotVerifiedAndNothingIsReturned()
    {
        // Every layer maps and agrees, but the graph scales the logits by 1.001 after the classifier: 1e-3 relative > 1e-4.
        using var dir = new TempDirectory();
        ExportEdited(dir, """
            from onnx import helper, numpy_helper
            import numpy as np
            gemm = next(n for n in m.graph.node if n.op_type == 'Gemm')
            gemm.output[0] = 'unscaled'
            m.graph.initializer.append(numpy_helper.from_array(np.array(1.001, np.float32), 'scale'))
            m.graph.node.append(helper.make_node('Mul', ['unscaled', 'scale'], [m.graph.output[0].name]))
            """);
        var ex = Assert.ThrowsExactly<OnnxImportException>(() => OnnxImporter.Import(dir.File("model.onnx"), "resnet18").Dispose());
        StringAssert.Contains(ex.Message, "is not verified");
        StringAssert.Contains(ex.Message, "the layers agree but the graph output 'output' differs");
        StringAssert.Contains(ex.Message, "Nothing was imported");
        // A looser tolerance accepts it, and the report says by how much it differs.
        using var loose = OnnxImporter.Import(dir.File("model.onnx"), "resnet18", tolerance: 2e-3);
        Assert.IsTrue(loose.Report.RelativeDifference is > 5e-4 and < 2e-3, loose.Report.RelativeDifference.ToString());
    }

    [TestMethod]
    public void Featurizer_WithoutClassifier_MapsOntoTheHeadlessArchitecture()
    {
        using var dir = new TempDirectory();
        OnnxReference.Run("""
            import torchvision
            torch.manual_seed(0)
            model = torchvision.models.resnet18()
            model.fc = torch.nn.Identity()
            model.eval()
            torch.onnx.export(model, torch.randn(1, 3, 32, 32), sys.argv[1], opset_version=13, input_names=["x"], output_names=["features"])
            """, dir.File("features.onnx"));
        using var result = OnnxImporter.Import(dir.File("features.onnx"), "resnet18");
        Assert.AreEqual(0, result.Report.NumClasses);
        Assert.AreEqual(0, result.Options.NumClasses);
        Assert.IsFalse(result.Weights.ContainsKey("fc.weight"));
        Assert.IsTrue(result.Report.RelativeDifference <= 1e-4);
    }

    [TestMethod]
    [DataRow(17, DisplayName = "opset 17: LayerNormalization nodes")]
    [DataRow(14, DisplayName = "opset 14: LayerNorm decomposed into ReduceMean … Mul, Add")]
    public void ConvNeXt_LayerNormsLinearsAndLayerScale(int opset)
    {
        // The layer scale and norm parameters are randomised so that their pairing shows.
        var report = ImportAndCompare("convnext_tiny", 64, opset: opset, prepare: """
            for n, p in model.named_parameters():
                if n.endswith("layer_scale") or "norm" in n or n.startswith("classifier.0") or n.endswith(".1.weight") or n.endswith(".1.bias"):
                    p.uniform_(0.5, 1.5) if not n.endswith("bias") else p.uniform_(-0.5, 0.5)
            """);
        Assert.IsNotNull(report.Entries.Single(e => e.StateDictKey == "features.1.0.layer_scale").OnnxTensor);
        StringAssert.Contains(report.Entries.Single(e => e.StateDictKey == "features.1.0.layer_scale").Note, "by shape and order");
    }

    [TestMethod]
    public void VisionTransformer_IsRefusedNamingWhatCannotBeMapped()
    {
        using var dir = new TempDirectory();
        OnnxReference.Export(dir.Path, "resnet18", 32);
        var ex = Assert.ThrowsExactly<OnnxImportException>(() => OnnxImporter.Import(dir.File("model.onnx"), "vit_b_16").Dispose());
        StringAssert.Contains(ex.Message, "onto vit_b_16: the parameter 'encoder.pos_embedding' [1, 5, 768] is outside the layer kinds");
    }
}
