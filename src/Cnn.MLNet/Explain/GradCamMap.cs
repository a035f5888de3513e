namespace Cnn.MLNet.Explain;

/// <summary>
/// A Grad-CAM map of one class at one feature stage (<see cref="GradCam.Compute"/>).
/// </summary>
/// <param name="TargetClass">The class explained (0-based).</param>
/// <param name="Stage">The feature stage (index into the backbone's <c>FeatureInfo</c>).</param>
/// <param name="StageName">The stage's module name (e.g. <c>layer4</c>).</param>
/// <param name="Raw">The map at the stage's resolution, <c>ReLU(Σ_c w_c · A_c)</c>, row-major <paramref name="RawHeight"/>×<paramref name="RawWidth"/>; not normalised.</param>
/// <param name="RawHeight">Height of the stage's map.</param>
/// <param name="RawWidth">Width of the stage's map.</param>
/// <param name="Heatmap">
/// <paramref name="Raw"/> upsampled bilinearly (<c>align_corners = false</c>) to the input size, then min–max normalised over
/// the upsampled map to [0, 1]: <c>(m − min m) / (max m − min m)</c>; all zeros when the map is constant. Row-major
/// <paramref name="Height"/>×<paramref name="Width"/>.
/// </param>
/// <param name="Height">Input height.</param>
/// <param name="Width">Input width.</param>
/// <param name="Probabilities">The softmax of the logits the gradient was taken from.</param>
public sealed record GradCamMap(
    int TargetClass, int Stage, string StageName,
    float[] Raw, int RawHeight, int RawWidth,
    float[] Heatmap, int Height, int Width,
    float[] Probabilities)
{
    /// <summary>The probability of <see cref="TargetClass"/>.</summary>
    public float Probability => Probabilities[TargetClass];
}
