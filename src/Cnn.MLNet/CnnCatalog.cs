using Cnn.Backbones.Models;
using Cnn.MLNet.Clip;
using Cnn.MLNet.Distillation;
using Cnn.MLNet.Features;
using Cnn.MLNet.Mapping;
using Microsoft.ML;

namespace Cnn.MLNet;

/// <summary>
/// Every ML.NET catalog entry of this library, in one place (as ML.NET keeps <c>TorchSharpCatalog</c>):
/// <c>mlContext.MulticlassClassification.Trainers.Cnn(...)</c> and <c>.CnnDistill(...)</c>;
/// <c>mlContext.Transforms.ExtractCnnFeatures(...)</c>, <c>.ZeroShotClassify(...)</c>, <c>.ExtractClipImageEmbeddings(...)</c>
/// and <c>.ExtractClipTextEmbeddings(...)</c>.
/// </summary>
public static class CnnCatalog
{
    /// <summary>
    /// Fine-tunes a CNN backbone (<paramref name="options"/>.Architecture, default resnet18) as a multiclass trainer; progress goes
    /// to the catalog's <see cref="MLContext"/> log.
    /// </summary>
    public static CnnEstimator Cnn(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, CnnTrainerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        options ??= new CnnTrainerOptions();
        ModelRegistry.Get(options.Architecture);
        return new CnnEstimator(options, CatalogEnvironment.Of(catalog));
    }

    /// <summary>
    /// Knowledge distillation of <paramref name="teacher"/> into a student of <paramref name="options"/>.StudentArchitecture (default
    /// resnet18); progress goes to the catalog's <see cref="MLContext"/> log.
    /// </summary>
    public static CnnDistillationEstimator CnnDistill(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, DistillationTeacher teacher,
        CnnDistillationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        options ??= new CnnDistillationOptions();
        return new CnnDistillationEstimator(teacher, options, CatalogEnvironment.Of(catalog));
    }

    /// <summary>Pooled CNN features (and optional stage maps) of an image column, for downstream trainers.</summary>
    public static CnnFeatureEstimator ExtractCnnFeatures(this TransformsCatalog catalog, CnnFeatureOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new CnnFeatureEstimator(options, CatalogEnvironment.Of(catalog));
    }

    /// <summary>Pooled features of <paramref name="architecture"/> with <paramref name="weightsPath"/> into <paramref name="outputColumnName"/>.</summary>
    public static CnnFeatureEstimator ExtractCnnFeatures(this TransformsCatalog catalog, string outputColumnName = "Features",
        string architecture = CnnTrainerOptions.DefaultArchitecture, string? weightsPath = null, string imageColumnName = "Image")
        => catalog.ExtractCnnFeatures(new CnnFeatureOptions
        {
            OutputColumnName = outputColumnName, Architecture = architecture, Model = new ModelOptions { WeightsPath = weightsPath }, ImageColumnName = imageColumnName,
        });

    /// <summary>
    /// Zero-shot image classification into <paramref name="labels"/>: each label's prompts (every template with <c>{}</c>
    /// replaced by the label) are embedded, averaged and normalised, as OpenCLIP's <c>build_zero_shot_classifier</c> does;
    /// outputs <c>Score</c> (softmax of exp(logit_scale) · cosine similarity) and <c>PredictedLabel</c> (a key with the labels
    /// as key values), so <c>MulticlassClassification.Evaluate</c> works with no training.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="labels">Class names (at least two, no repeats).</param>
    /// <param name="templates">Prompt templates, each with <c>{}</c>; null for <c>"a photo of a {}."</c>.</param>
    /// <param name="options">Model, weights and columns; null for the defaults (ViT-B-32, random weights).</param>
    /// <exception cref="ArgumentException">An empty or repeated label, or a template without <c>{}</c>.</exception>
    public static ClipZeroShotEstimator ZeroShotClassify(this TransformsCatalog catalog, IReadOnlyList<string> labels,
        IReadOnlyList<string>? templates = null, ClipZeroShotOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new ClipZeroShotEstimator(labels, templates, options ?? new ClipZeroShotOptions());
    }

    /// <summary>CLIP image embeddings of an image column (L2-normalised by default), for downstream trainers and search.</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="options">Model, weights and columns (<see cref="ClipEmbeddingOptions.InputColumnName"/> is the image column).</param>
    public static ClipImageEmbeddingEstimator ExtractClipImageEmbeddings(this TransformsCatalog catalog, ClipEmbeddingOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new ClipImageEmbeddingEstimator(options);
    }

    /// <summary>CLIP text embeddings of a text column (L2-normalised by default), e.g. to search images by text.</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="options">Model, weights and columns (<see cref="ClipEmbeddingOptions.InputColumnName"/> is the text column).</param>
    public static ClipTextEmbeddingEstimator ExtractClipTextEmbeddings(this TransformsCatalog catalog, ClipEmbeddingOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new ClipTextEmbeddingEstimator(options);
    }
}
