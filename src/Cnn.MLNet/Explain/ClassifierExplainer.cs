using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using Cnn.MLNet.Scoring;

namespace Cnn.MLNet.Explain;

/// <summary>Grad-CAM explanations of a fitted <see cref="CnnClassifierTransformer"/>'s predictions.</summary>
public static class ClassifierExplainer
{
    /// <summary>
    /// Preprocesses <paramref name="image"/> as the classifier does (evaluation resize and centre crop) and explains the score of
    /// <paramref name="targetClass"/> at <paramref name="stage"/> with <see cref="GradCam.Compute"/>.
    /// </summary>
    /// <param name="classifier">The fitted classifier.</param>
    /// <param name="image">The image.</param>
    /// <param name="targetClass">Class to explain (0-based, in <see cref="CnnClassifierTransformer.ClassNames"/> order); null for the predicted one.</param>
    /// <param name="stage">Feature stage (index into the backbone's <c>FeatureInfo</c>); null for the last one.</param>
    /// <exception cref="ImageDecodeException">The image cannot be read.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The class or the stage is out of range; the message names the valid ones.</exception>
    public static ClassifierExplanation Explain(this CnnClassifierTransformer classifier, ImageSample image, int? targetClass = null, int? stage = null)
    {
        ArgumentNullException.ThrowIfNull(classifier);
        ArgumentNullException.ThrowIfNull(image);
        var network = classifier.Network;
        var prepared = PreparedImage.From(image, network.Preprocess);
        using var input = prepared.ToTensor(network.Device);
        var map = network.Exclusive(model => GradCam.Compute(model, input, targetClass, stage));
        return new ClassifierExplanation(map, classifier.ClassNames[map.TargetClass], prepared.Seen);
    }

    /// <summary>Explains the classifier's score for the image file at <paramref name="path"/>.</summary>
    /// <inheritdoc cref="Explain(CnnClassifierTransformer, ImageSample, int?, int?)"/>
    public static ClassifierExplanation Explain(this CnnClassifierTransformer classifier, string path, int? targetClass = null, int? stage = null) =>
        Explain(classifier, ImageSample.FromFile(path, 0), targetClass, stage);
}
