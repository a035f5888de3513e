using System.Globalization;
using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.Backbones.Onnx.Export;
using Cnn.Backbones.Tests.Models;
using Cnn.Tests.Shared;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Onnx;

/// <summary>
/// ONNX export: one variant of every family (every model with <c>CNN_EXPORT_ALL=1</c>) exports, runs in ONNX Runtime with the
/// same output as the model in eval mode (1e-4 relative) for another batch size than it was written with, and passes
/// <c>onnx.checker.check_model</c> with full checks; plus the options (probabilities, normalisation inside, dynamic size, metadata).
/// </summary>
[TestClass]
public sealed class OnnxExportTests
{
    private const double Tolerance = 1e-4;

    [TestMethod]
    public void EveryFamilyExportsAndRunsInOnnxRuntimeAsTheModel()
    {
        using var folder = new TempDirectory();
        var failures = new List<string>();
        var files = new List<string>();
        foreach (var spec in OnnxExportCases.Specs())
        {
            using var scope = NewDisposeScope();
            try
            {
                using var model = OnnxExportCases.Create(spec);
                var result = OnnxExporter.Export(model, new OnnxExportOptions { ImageSize = spec.Quirks.TestSize });
                var input = OnnxExportCases.Input(result, batch: 3);
                double difference;
                using (no_grad()) difference = OnnxExportCases.RelativeDifference(OnnxExportCases.RunOnnx(result, input), model.call(input));
                string path = folder.File(spec.Name + ".onnx");
                result.Save(path);
                files.Add(path);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{spec.Name}@{spec.Quirks.TestSize}: relative difference {difference:G3} (export check {result.RelativeDifference:G3})"));
                if (!(difference <= Tolerance)) failures.Add(string.Create(CultureInfo.InvariantCulture, $"{spec.Name}: relative difference {difference:G3}"));
            }
            catch (Exception ex) when (ex is NotSupportedException or OnnxExportException or InvalidOperationException or ArgumentException)
            {
                failures.Add($"{spec.Name}: {ex.GetType().Name}: {ex.Message}");
            }
        }
        if (files.Count > 0) Console.WriteLine(OnnxExportCases.Check(files));
        Assert.AreEqual(0, failures.Count, string.Join("\n", failures));
    }

    [TestMethod]
    public void Probabilities_AreTheSoftmaxOfTheLogits_AndTheGraphIsDescribedInItsMetadata()
    {
        using var scope = NewDisposeScope();
        using var model = OnnxExportCases.Create(new ModelSpec("resnet18"));
        string[] labels = [.. Enumerable.Range(0, 10).Select(i => $"class \"{i}\"")];
        var result = OnnxExporter.Export(model, new OnnxExportOptions { ImageSize = 32, Output = OnnxExportOutput.Probabilities, ClassLabels = labels });
        Assert.AreEqual("probabilities", result.OutputName);
        var input = OnnxExportCases.Input(result, batch: 4);
        var probabilities = OnnxExportCases.RunOnnx(result, input);
        using (no_grad()) Assert.IsTrue(OnnxExportCases.RelativeDifference(probabilities, model.call(input).softmax(1)) <= Tolerance);

        var graph = result.Model.Graph;
        Assert.AreEqual(OnnxExporter.InputName, graph.Input.Single().Name);
        var dims = graph.Input[0].Type.TensorType.Shape.Dim;
        Assert.AreEqual("batch", dims[0].DimParam, "the batch axis is symbolic");
        CollectionAssert.AreEqual(new long[] { 3, 32, 32 }, dims.Skip(1).Select(d => d.DimValue).ToArray());
        Assert.AreEqual(17, result.Model.OpsetImport.Single().Version);
        var metadata = result.Model.MetadataProps.ToDictionary(p => p.Key, p => p.Value);
        Assert.AreEqual("resnet18", metadata["cnn.architecture"]);
        Assert.AreEqual("3,32,32", metadata["cnn.input_size"]);
        Assert.AreEqual(string.Join(",", PretrainedConfig.ImageNetMean.Select(m => m.ToString("R", CultureInfo.InvariantCulture))), metadata["cnn.mean"]);
        Assert.AreEqual(string.Join(",", PretrainedConfig.ImageNetStd.Select(m => m.ToString("R", CultureInfo.InvariantCulture))), metadata["cnn.std"]);
        Assert.AreEqual("probabilities", metadata["cnn.output"]);
        StringAssert.StartsWith(metadata["cnn.normalization"], "outside");
        CollectionAssert.AreEqual(labels, System.Text.Json.JsonSerializer.Deserialize<string[]>(metadata["cnn.class_labels"]));
    }

    [TestMethod]
    public void NormalizeInside_TakesPixelValues_AsExtractPixelsGivesThem()
    {
        using var scope = NewDisposeScope();
        using var model = OnnxExportCases.Create(new ModelSpec("mobilenet_v3_small"));
        double[] mean = [0.2, 0.4, 0.6], std = [0.3, 0.2, 0.25];
        var result = OnnxExporter.Export(model, new OnnxExportOptions { ImageSize = 48, NormalizeInside = true, Mean = mean, Std = std });
        var pixels = rand([2, 3, 48, 48], generator: new Generator(3)).Times(255).round();
        var normalised = (pixels.DividedBy(255) - tensor(mean.Select(v => (float)v).ToArray()).reshape(1, 3, 1, 1)) / tensor(std.Select(v => (float)v).ToArray()).reshape(1, 3, 1, 1);
        using (no_grad()) Assert.IsTrue(OnnxExportCases.RelativeDifference(OnnxExportCases.RunOnnx(result, pixels), model.call(normalised)) <= Tolerance);
        var metadata = result.Model.MetadataProps.ToDictionary(p => p.Key, p => p.Value);
        StringAssert.StartsWith(metadata["cnn.normalization"], "inside");
        Assert.AreEqual("255", metadata["cnn.pixel_scale"]);
        Assert.AreEqual("0.2,0.4,0.6", metadata["cnn.mean"]);
    }

    [TestMethod]
    public void DynamicSize_RunsAtOtherSizes_WhereTheArchitectureAllows()
    {
        using var scope = NewDisposeScope();
        using var model = OnnxExportCases.Create(new ModelSpec("resnet18"));
        var result = OnnxExporter.Export(model, new OnnxExportOptions { ImageSize = 32, DynamicSize = true });
        var dims = result.Model.Graph.Input[0].Type.TensorType.Shape.Dim;
        CollectionAssert.AreEqual(new[] { "batch", "", "height", "width" }, dims.Select(d => d.DimParam).ToArray());
        foreach (var (h, w) in new[] { (48, 40), (64, 64) })
        {
            var input = randn([2, 3, h, w], generator: new Generator(9));
            using (no_grad()) Assert.IsTrue(OnnxExportCases.RelativeDifference(OnnxExportCases.RunOnnx(result, input), model.call(input)) <= Tolerance, $"{h}x{w}");
        }
    }

    [TestMethod]
    [DataRow("lenet5", "its fully-connected layers take a 5×5 map")]
    [DataRow("alexnet", "'avgpool' pools adaptively to a fixed 6×6 grid")]
    public void DynamicSize_IsRefusedWithTheReason_WhereTheArchitectureHasAFixedSizePart(string name, string reason)
    {
        using var model = OnnxExportCases.Create(new ModelSpec(name));
        var ex = Assert.ThrowsExactly<NotSupportedException>(() => OnnxExporter.Export(model, new OnnxExportOptions { DynamicSize = true }));
        StringAssert.Contains(ex.Message, $"{name} cannot be exported with a dynamic input size: {reason}");
    }

    [TestMethod]
    public void VisionTransformer_DynamicSizeIsRefused_ForItsPositionEmbedding()
    {
        using var model = OnnxExportCases.Create(new ModelSpec("vit_b_32"));
        var ex = Assert.ThrowsExactly<NotSupportedException>(() => OnnxExporter.Export(model, new OnnxExportOptions { DynamicSize = true }));
        StringAssert.Contains(ex.Message, "vit_b_32 cannot be exported with a dynamic input size: its position embedding is built for 64×64 inputs");
    }

    [TestMethod]
    public void UnsupportedModule_IsAClearErrorNamingItsTypeAndPath()
    {
#pragma warning disable CNN0001 // ELU's forward makes temporary scalars; this test never runs it (export rejects the module first)
        var root = TorchSharp.torch.nn.Sequential(("conv", Cnn.Backbones.Compute.Ops.Conv2d(3, 4, 3)), ("act", TorchSharp.torch.nn.ELU()));
#pragma warning restore CNN0001
        var context = new OnnxExportContext(root, [1, 3, 8, 8], dynamicSize: false);
        var ex = Assert.ThrowsExactly<NotSupportedException>(() => context.Emit(root, OnnxExporter.InputName));
        StringAssert.Contains(ex.Message, "ONNX export does not support the module 'act' of type TorchSharp.Modules.ELU");
        StringAssert.Contains(ex.Message, "IOnnxExportable");
    }

    [TestMethod]
    public void ProbabilitiesWithoutAClassifier_AreRefused()
    {
        using var model = OnnxExportCases.Create(new ModelSpec("resnet18"));
        model.ResetClassifier(0);
        var ex = Assert.ThrowsExactly<NotSupportedException>(() => OnnxExporter.Export(model, new OnnxExportOptions { ImageSize = 32, Output = OnnxExportOutput.Probabilities }));
        StringAssert.Contains(ex.Message, "has no classifier");
        var features = OnnxExporter.Export(model, new OnnxExportOptions { ImageSize = 32 });
        Assert.AreEqual("features", features.OutputName);
    }

    public static IEnumerable<object[]> SmallestOfEachFamily => FamilyCases.SmallestRows;

    /// <summary>Our export of the smallest variant of every family imports back to the same weights (where the importer takes the family).</summary>
    [TestMethod]
    [DynamicData(nameof(SmallestOfEachFamily))]
    public void ExportedModel_ImportsBackToIdenticalWeights(string name)
    {
        using var folder = new TempDirectory();
        // An eval-mode export never runs auxiliary classifiers: where the family has them, the model is built without.
        bool auxiliary = ModelRegistry.GetDefinition(name).Capabilities.AuxLogits;
        var spec = new ModelSpec(auxiliary ? name + "+noaux" : name);
        using var model = OnnxExportCases.Create(spec);
        string path = folder.File(name + ".onnx");
        OnnxExporter.Export(model, new OnnxExportOptions { ImageSize = spec.Quirks.ExportSize ?? spec.Quirks.ImageSize ?? spec.Quirks.TestSize }).Save(path);
        var options = auxiliary ? new ModelOptions { AuxLogits = false } : null;
        if (spec.Quirks.NoOnnxImport is { } why)
        {
            var refused = Assert.ThrowsExactly<Cnn.Backbones.Onnx.OnnxImportException>(() => Cnn.Backbones.Onnx.OnnxImporter.Import(path, name, options).Dispose());
            StringAssert.Contains(refused.Message, why[..why.IndexOf(':', StringComparison.Ordinal)]);
            return;
        }
        using var imported = Cnn.Backbones.Onnx.OnnxImporter.Import(path, name, options);
        var ours = model.state_dict().Where(e => !e.Key.EndsWith("num_batches_tracked", StringComparison.Ordinal)).ToList();
        Assert.AreEqual(ours.Count, imported.Weights.Keys.Count(k => !k.EndsWith("num_batches_tracked", StringComparison.Ordinal)));
        foreach (var (key, tensor) in ours)
            Assert.IsFalse(tensor.cpu().ne(imported.Weights[key].to_type(tensor.dtype)).any().item<bool>(), $"{name}: {key} differs after export and import");
    }

    [TestMethod]
    public void AnOnnxFileAsWeights_AdvisesCnnImport()
    {
        using var folder = new TempDirectory();
        using var model = OnnxExportCases.Create(new ModelSpec("resnet18"));
        string path = folder.File("resnet18.onnx");
        OnnxExporter.Export(model, new OnnxExportOptions { ImageSize = 32, Verify = false }).Save(path);
        var ex = Assert.ThrowsExactly<Cnn.Backbones.Onnx.OnnxWeightsException>(() => ModelRegistry.Create("resnet18", new ModelOptions { NumClasses = 10, WeightsPath = path }).Dispose());
        StringAssert.Contains(ex.Message, $"'{path}' is an ONNX model, and its initializers do not fit resnet18");
        StringAssert.Contains(ex.Message, $"'cnn import {path} --model resnet18'");
        Assert.ThrowsExactly<Cnn.Backbones.Onnx.OnnxWeightsException>(() => model.LoadWeights(path));
    }
}
