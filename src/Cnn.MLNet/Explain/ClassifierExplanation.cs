namespace Cnn.MLNet.Explain;

/// <summary>The Grad-CAM explanation of one image by a fitted classifier (<see cref="ClassifierExplainer"/>).</summary>
/// <param name="Map">The Grad-CAM map (raw and normalised heatmap, probabilities).</param>
/// <param name="ClassName">The name of the class explained (the label's key value).</param>
/// <param name="Input">The image as the model saw it: its preprocessed crop, de-normalised to 8-bit RGB (gray models: R = G = B).</param>
public sealed record ClassifierExplanation(GradCamMap Map, string ClassName, RgbImage Input)
{
    /// <summary>The class explained (0-based, in score order).</summary>
    public int ClassIndex => Map.TargetClass;

    /// <summary>Its probability.</summary>
    public float Probability => Map.Probability;

    /// <summary>The normalised heatmap, row-major <see cref="Height"/>×<see cref="Width"/>, in [0, 1].</summary>
    public float[] Heatmap => Map.Heatmap;

    /// <summary>Height of the heatmap and of <see cref="Input"/>.</summary>
    public int Height => Map.Height;

    /// <summary>Width of the heatmap and of <see cref="Input"/>.</summary>
    public int Width => Map.Width;

    /// <summary>The heatmap in jet colours blended over <see cref="Input"/> (<see cref="HeatmapOverlay.Blend"/>).</summary>
    /// <param name="alpha">Weight of the colour map, in [0, 1].</param>
    public RgbImage Overlay(double alpha = 0.5) => HeatmapOverlay.Blend(Input, Heatmap, alpha);
}
