using Cnn.MLNet.Features;
using Cnn.MLNet;
using Microsoft.ML;

namespace Cnn.Examples.GuideSnippets;

/// <summary>The snippets of docs/guides/features.md.</summary>
internal static class Features
{
    /// <summary>Pooled CNN features feeding an ML.NET trainer.</summary>
    public static ITransformer FeaturesForSdca(MLContext ml, IDataView data, string? weightsFile)
    {
        #region features
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.ExtractCnnFeatures(new CnnFeatureOptions
            {
                Architecture = "resnet50",
                Model = new() { WeightsPath = weightsFile },
                ImageColumnName = "Image",
                StageIndices = [3],          // optional: also the column "Features.stage3" (layer3's maps, C×H×W)
            }))
            .AppendCacheCheckpoint(ml)       // the trainer makes several passes: compute the features once
            .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy("Label", "Features"));
        ITransformer model = pipeline.Fit(data);
        #endregion
        return model;
    }

    /// <summary>The same features computed by ONNX Runtime.</summary>
    public static CnnFeatureOptions OnnxRuntimeFeatures(string weightsFile) =>
        #region onnxruntime
        new CnnFeatureOptions
        {
            Architecture = "resnet18",
            Model = new() { WeightsPath = weightsFile },
            Engine = Cnn.MLNet.CnnInferenceEngine.OnnxRuntime,   // the network's own verified ONNX export, float32 on the CPU
        };
        #endregion
}
