using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using Cnn.MLNet.Scoring;
using static TorchSharp.torch;

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
        using var batch = network.PrepareBatch([image]);
        var input = Denormalise(batch.Pixels, batch.Height, batch.Width, network.Preprocess);
        GradCamMap map;
        using (var scope = NewDisposeScope())
        {
            var tensor = batch.ToTensor().to(network.Device);
            map = network.Exclusive(model => GradCam.Compute(model, tensor, targetClass, stage));
        }
        return new ClassifierExplanation(map, classifier.ClassNames[map.TargetClass], input);
    }

    /// <summary>Explains the classifier's score for the image file at <paramref name="path"/>.</summary>
    /// <inheritdoc cref="Explain(CnnClassifierTransformer, ImageSample, int?, int?)"/>
    public static ClassifierExplanation Explain(this CnnClassifierTransformer classifier, string path, int? targetClass = null, int? stage = null) =>
        Explain(classifier, ImageSample.FromFile(path, 0), targetClass, stage);

    /// <summary>
    /// The preprocessed CHW floats back to 8-bit RGB: <c>round(clamp(x · std + mean, 0, 1) · 255)</c> per channel, which undoes
    /// <see cref="ImagePreprocessor"/>'s normalisation exactly; one channel is replicated to R = G = B.
    /// </summary>
    internal static RgbImage Denormalise(ReadOnlySpan<float> chw, int height, int width, PreprocessOptions options)
    {
        int plane = height * width, channels = options.Channels;
        if (chw.Length < plane * channels)
            throw new ArgumentException($"Expected {plane * channels} floats for {channels}x{height}x{width}, got {chw.Length}.", nameof(chw));
        var pixels = new byte[plane * 3];
        for (int o = 0; o < 3; o++)
        {
            int c = channels == 1 ? 0 : o;
            float mean = options.Mean[c], std = options.Std[c];
            var source = chw.Slice(c * plane, plane);
            for (int i = 0; i < plane; i++)
                pixels[3 * i + o] = (byte)MathF.Round(Math.Clamp(source[i] * std + mean, 0f, 1f) * 255f);
        }
        return new RgbImage(width, height, pixels);
    }
}
