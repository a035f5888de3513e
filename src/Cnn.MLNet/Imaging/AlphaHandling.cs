namespace Cnn.MLNet.Imaging;

/// <summary>What to do with the alpha channel of RGBA, LA and transparent palette images when converting them to RGB or gray.</summary>
public enum AlphaHandling
{
    /// <summary>
    /// Ignore alpha and keep the stored color values. This is what PIL's <c>Image.convert("RGB")</c> (and so torchvision's
    /// default <c>ImageFolder</c> loader) does, and is the default.
    /// </summary>
    Drop = 0,

    /// <summary>Blend each pixel over a white background: <c>c' = (c·a + 255·(255 − a)) / 255</c>, rounded like PIL's <c>paste</c> with a mask.</summary>
    CompositeOnWhite = 1,

    /// <summary>Blend each pixel over a black background: <c>c' = c·a / 255</c>, rounded like PIL's <c>paste</c> with a mask.</summary>
    CompositeOnBlack = 2,
}
