using Cnn.Backbones.Models;
using Cnn.Backbones.Onnx;
using Cnn.Backbones.Onnx.Export;
using Cnn.Backbones.Weights;
using Cnn.MLNet.Export;

namespace Cnn.Examples.GuideSnippets;

/// <summary>The snippets of docs/guides/onnx.md.</summary>
internal static class Onnx
{
    /// <summary>Imports an ONNX model's weights onto a registered architecture.</summary>
    public static void Import()
    {
        #region import
        using var imported = OnnxImporter.Import("resnet18.onnx", "resnet18");   // verified in ONNX Runtime, or OnnxImportException
        SafeTensors.Write("resnet18.safetensors", imported.Weights);            // usable as ModelOptions.WeightsPath / --weights
        using var model = ModelRegistry.Create("resnet18", imported.Options);   // NumClasses and BlockCounts as found in the graph
        #endregion
    }

    /// <summary>Imports the network behind ML.NET's DnnFeaturizeImage with its preprocessing graph.</summary>
    public static void ImportMlNetResNet18(string packageFolder)
    {
        #region mlnet-resnet18
        // packageFolder: ~/.nuget/packages/microsoft.ml.dnnimagefeaturizer.resnet18/<version>/tools/DnnImageModels
        using var imported = OnnxImporter.ImportWithPreprocessing(
            Path.Combine(packageFolder, "ResNetPrepOnnx", "ResNetPreprocess.onnx"),
            Path.Combine(packageFolder, "ResNet18Onnx", "ResNet18.onnx"), "resnet18");   // BlockCounts [2, 2, 2, 3], no classifier
        SafeTensors.Write("mlnet-resnet18.safetensors", imported.Weights);
        #endregion
    }

    /// <summary>Exports a model and a trained pipeline to ONNX.</summary>
    public static void Export(Backbone backbone)
    {
        #region export
        var result = OnnxExporter.Export(backbone, new OnnxExportOptions { ImageSize = 224 });   // any Backbone, verified in ONNX Runtime
        result.Save("model.onnx");
        var fromPipeline = ClassifierOnnxExport.Export("model.zip",                             // a pipeline saved by CnnPipelineFile
            new OnnxExportOptions { NormalizeInside = true, Output = OnnxExportOutput.Probabilities });            // 0-255 pixels in, probabilities out
        fromPipeline.Save("classifier.onnx");
        #endregion
    }
}
