using Cnn.Backbones.Models;
using Cnn.MLNet;
using Cnn.MLNet.Clip;
using Microsoft.ML;

namespace Cnn.Examples.GuideSnippets;

/// <summary>The snippets of docs/guides/zero-shot.md.</summary>
internal static class ZeroShot
{
    /// <summary>Classifies a data view of images into labels named in text, with no training.</summary>
    public static void Classify(MLContext ml, IDataView images)
    {
        #region zeroshot
        var pipeline = ml.Transforms.ZeroShotClassify(
            ["cat", "dog", "car"],                                   // the classes, in plain text
            ["a photo of a {}.", "a blurry photo of the {}."],       // prompt templates, averaged per label
            new ClipZeroShotOptions
            {
                ModelName = "ViT-B-32",
                WeightsPath = "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K",   // or an OpenCLIP checkpoint file
                ImageColumnName = "Image",
            });
        var scored = pipeline.Fit(images).Transform(images);        // Score (softmax) and PredictedLabel (key values: the labels)
        #endregion
        Console.WriteLine(scored.Schema.Count);
    }

    /// <summary>Adds CLIP image embeddings for a downstream trainer or a search index.</summary>
    public static IEstimator<ITransformer> Embeddings(MLContext ml) =>
        #region embeddings
        ml.Transforms.ExtractClipImageEmbeddings(new ClipEmbeddingOptions
        {
            ModelName = "ViT-B-32",
            WeightsPath = "open_clip_pytorch_model.bin",
            InputColumnName = "Image",
            OutputColumnName = "Features",                          // L2-normalised, 512 numbers for ViT-B-32
        })
        .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy(featureColumnName: "Features"));
        #endregion

    /// <summary>Fine-tunes (or linear-probes) CLIP's image tower on labelled images with CnnTrainer.</summary>
    public static IEstimator<ITransformer> FineTune(MLContext ml, bool linearProbe) =>
        #region finetune
        ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(CnnTrainer.ClipVitB32(new CnnTrainerOptions                // clip_vit_b16, clip_vit_l14, clip_rn50, *_quickgelu
            {
                Model = new ModelOptions { WeightsPath = "open_clip_pytorch_model.bin" },   // or Weights = "hf-hub:laion/..."
                Freeze = linearProbe ? FreezeMode.Backbone : FreezeMode.None,  // Backbone: only the linear head trains
                LearningRate = linearProbe ? 1e-3 : 1e-5,
                ImageColumnName = "Image",
            }, ml));
        #endregion
}
