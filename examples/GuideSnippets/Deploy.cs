using Cnn.Backbones.Onnx.Export;
using Cnn.MLNet.Export;
using Cnn.MLNet.Persistence;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Cnn.Examples.GuideSnippets;

/// <summary>The snippets of docs/guides/deploy.md.</summary>
internal static class Deploy
{
    /// <summary>Exports a trained pipeline's network for ML.NET's ApplyOnnxModel.</summary>
    public static void ExportForMlNet()
    {
        #region export
        var export = ClassifierOnnxExport.Export("model.zip", new OnnxExportOptions
        {
            NormalizeInside = true,                      // input: 0-255 pixels, what ExtractPixels gives with its defaults
            Output = OnnxExportOutput.Probabilities,     // output: softmax probabilities
        });
        export.Save("model.onnx");
        #endregion
    }

    /// <summary>Converts a trained pipeline into ML.NET's own transformers, saved with ML.NET's Model.Save.</summary>
    public static void ToPlainMlNet(MLContext ml, ITransformer model, IDataView data)
    {
        #region plain
        var plain = MLNetExport.ToOnnxPipeline(ml, model, data.Schema);   // verified against the network before it returns
        plain.Save(ml, "plain.zip");                                       // mlContext.Model.Save, through a temporary file
        // or from a file saved by CnnPipelineFile / cnn train:
        CnnPipelineFile.ExportForMLNet(ml, "model.zip", "plain.zip");
        #endregion
    }

    /// <summary>Scores images in a process that references only Microsoft.ML, ImageAnalytics and OnnxTransformer.</summary>
    public static float[] ScoreWithPlainMlNet(string imagePath, int size)
    {
        #region consume
        var ml = new MLContext();
        var pipeline = ml.Transforms.LoadImages("image", imageFolder: "", inputColumnName: nameof(ImageInput.ImagePath))
            .Append(ml.Transforms.ResizeImages("image", size, size, resizing: ImageResizingEstimator.ResizingKind.Fill))
            .Append(ml.Transforms.ExtractPixels("input", "image"))                     // planar RGB, 0-255
            .Append(ml.Transforms.ApplyOnnxModel("probabilities", "input", "model.onnx"));
        var model = pipeline.Fit(ml.Data.LoadFromEnumerable(Array.Empty<ImageInput>()));
        var engine = ml.Model.CreatePredictionEngine<ImageInput, ImageScores>(model);
        float[] probabilities = engine.Predict(new ImageInput { ImagePath = imagePath }).Probabilities;
        #endregion
        return probabilities;
    }
}

/// <summary>The input row of the plain ML.NET pipeline.</summary>
internal sealed class ImageInput
{
    /// <summary>Path of the image file.</summary>
    public string ImagePath { get; set; } = "";
}

/// <summary>The output column of the plain ML.NET pipeline.</summary>
internal sealed class ImageScores
{
    /// <summary>The class probabilities, in the order of the model's classes (the ONNX file's cnn.class_labels metadata).</summary>
    [ColumnName("probabilities")]
    public float[] Probabilities { get; set; } = [];
}
