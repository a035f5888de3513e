using System.Globalization;
using Cnn.Backbones.Models;
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
}
