namespace Cnn.MLNet.Imaging;

/// <summary>A rectangle of an image in pixels: <see cref="Top"/>/<see cref="Left"/> corner and size, as torchvision's <c>(i, j, h, w)</c>.</summary>
/// <param name="Top">First row (torchvision <c>i</c>).</param>
/// <param name="Left">First column (torchvision <c>j</c>).</param>
/// <param name="Height">Number of rows (torchvision <c>h</c>).</param>
/// <param name="Width">Number of columns (torchvision <c>w</c>).</param>
public readonly record struct CropRegion(int Top, int Left, int Height, int Width);
