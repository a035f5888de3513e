namespace Cnn.MLNet.Imaging;

/// <summary>Resampling filter used when resizing, with the semantics of PIL's <c>Image.resize</c>.</summary>
public enum ResizeInterpolation
{
    /// <summary>Nearest neighbour (PIL <c>NEAREST</c>): the source pixel under each output pixel centre.</summary>
    Nearest = 0,

    /// <summary>Triangle filter scaled by the reduction factor (PIL <c>BILINEAR</c>, antialiased when downscaling). torchvision's default.</summary>
    Bilinear = 1,

    /// <summary>Keys cubic convolution with a = −0.5, scaled by the reduction factor (PIL <c>BICUBIC</c>, antialiased when downscaling).</summary>
    Bicubic = 2,
}
