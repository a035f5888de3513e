using Cnn.Backbones.Models;
using Cnn.MLNet.Data;
using Cnn.MLNet.Explain;
using Cnn.MLNet.Imaging;
using Cnn.MLNet.Networks;
using Cnn.MLNet.Scoring;

namespace Cnn.Examples.GuideSnippets;

/// <summary>The snippets of docs/guides/pictures.md.</summary>
internal static class Explain
{
    /// <summary>Grad-CAM of a trained classifier.</summary>
    public static void GradCam(CnnClassifierTransformer classifier)
    {
        #region gradcam
        ClassifierExplanation e = classifier.Explain("photos/triangle/0.png", targetClass: null, stage: null);  // predicted class, last stage
        Console.WriteLine($"{e.ClassName} ({e.Probability:P0})");
        e.Overlay(alpha: 0.5).SavePng("cam.png");       // jet heatmap blended over the crop the model saw
        #endregion
    }
}
