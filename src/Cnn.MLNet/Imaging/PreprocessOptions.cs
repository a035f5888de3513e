namespace Cnn.MLNet.Imaging;

/// <summary>
/// How images become model input: the size and normalization a backbone expects and the resize policy
/// (torchvision/timm evaluation transform and training augmentation settings).
/// </summary>
public sealed record PreprocessOptions
{
    /// <summary>ImageNet channel means (RGB) used by torchvision and timm models.</summary>
    public static IReadOnlyList<float> ImageNetMean { get; } = [0.485f, 0.456f, 0.406f];

    /// <summary>ImageNet channel standard deviations (RGB) used by torchvision and timm models.</summary>
    public static IReadOnlyList<float> ImageNetStd { get; } = [0.229f, 0.224f, 0.225f];

    /// <summary>Model input height in pixels. Default 224.</summary>
    public int Height { get; init; } = 224;

    /// <summary>Model input width in pixels. Default 224.</summary>
    public int Width { get; init; } = 224;

    /// <summary>Model input channels: 3 (RGB) or 1 (ITU-R 601-2 luminance). Default 3.</summary>
    public int Channels { get; init; } = 3;

    /// <summary>Per-channel mean subtracted after scaling to [0, 1]; one value per channel. Default <see cref="ImageNetMean"/>.</summary>
    public IReadOnlyList<float> Mean { get; init; } = ImageNetMean;

    /// <summary>Per-channel standard deviation divided by after subtracting the mean; one positive value per channel. Default <see cref="ImageNetStd"/>.</summary>
    public IReadOnlyList<float> Std { get; init; } = ImageNetStd;

    /// <summary>
    /// Evaluation center-crop fraction (timm <c>crop_pct</c>), in (0, 1] typically: the image is first resized to
    /// <c>floor(size / CropPct)</c>, then center-cropped to the input size. Default 0.875 (resize 256, crop 224).
    /// 1 resizes straight to the input size on the shorter side.
    /// </summary>
    public double CropPct { get; init; } = 0.875;

    /// <summary>Resampling filter for every resize. Default <see cref="ResizeInterpolation.Bilinear"/> (torchvision's default).</summary>
    public ResizeInterpolation Interpolation { get; init; } = ResizeInterpolation.Bilinear;

    /// <summary>How transparency is handled when decoding. Default <see cref="AlphaHandling.Drop"/> (as PIL's <c>convert("RGB")</c>).</summary>
    public AlphaHandling Alpha { get; init; } = AlphaHandling.Drop;

    /// <summary>Training augmentation: smallest crop area as a fraction of the image area (torchvision <c>scale[0]</c>). Default 0.08.</summary>
    public double MinScale { get; init; } = 0.08;

    /// <summary>Training augmentation: largest crop area fraction (torchvision <c>scale[1]</c>). Default 1.</summary>
    public double MaxScale { get; init; } = 1.0;

    /// <summary>Training augmentation: smallest crop aspect ratio w/h (torchvision <c>ratio[0]</c>). Default 3/4.</summary>
    public double MinAspectRatio { get; init; } = 3.0 / 4.0;

    /// <summary>Training augmentation: largest crop aspect ratio w/h (torchvision <c>ratio[1]</c>). Default 4/3.</summary>
    public double MaxAspectRatio { get; init; } = 4.0 / 3.0;

    /// <summary>Training augmentation: probability of a horizontal flip. Default 0.5.</summary>
    public double HorizontalFlipProbability { get; init; } = 0.5;

    /// <summary>Number of floats of one preprocessed image: <c>Channels * Height * Width</c>.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public int SampleLength => Channels * Height * Width;

    /// <summary>Options for a model that takes <paramref name="size"/>×<paramref name="size"/> ImageNet-normalized RGB input.</summary>
    public static PreprocessOptions ImageNet(int size = 224, double cropPct = 0.875) => new() { Height = size, Width = size, CropPct = cropPct };

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (Height < 1 || Width < 1) throw new ArgumentException($"Input size must be positive, got {Height}x{Width}.");
        if (Channels is not (1 or 3)) throw new ArgumentException($"Channels must be 1 or 3, got {Channels}.");
        if (Mean is null || Mean.Count != Channels) throw new ArgumentException($"Mean must have {Channels} value(s) (one per channel), got {Mean?.Count ?? 0}.");
        if (Std is null || Std.Count != Channels) throw new ArgumentException($"Std must have {Channels} value(s) (one per channel), got {Std?.Count ?? 0}.");
        foreach (float s in Std)
            if (!(s > 0f) || float.IsInfinity(s)) throw new ArgumentException($"Every std value must be positive and finite, got {s}.");
        foreach (float m in Mean)
            if (!float.IsFinite(m)) throw new ArgumentException($"Every mean value must be finite, got {m}.");
        if (!(CropPct > 0) || double.IsInfinity(CropPct)) throw new ArgumentException($"CropPct must be positive, got {CropPct}.");
        if (!Enum.IsDefined(Interpolation)) throw new ArgumentException($"Unknown interpolation {Interpolation}.");
        if (!Enum.IsDefined(Alpha)) throw new ArgumentException($"Unknown alpha handling {Alpha}.");
        if (!(MinScale > 0) || !(MaxScale >= MinScale) || MaxScale > 1)
            throw new ArgumentException($"Scale range must satisfy 0 < MinScale <= MaxScale <= 1, got ({MinScale}, {MaxScale}).");
        if (!(MinAspectRatio > 0) || !(MaxAspectRatio >= MinAspectRatio) || double.IsInfinity(MaxAspectRatio))
            throw new ArgumentException($"Aspect ratio range must satisfy 0 < MinAspectRatio <= MaxAspectRatio, got ({MinAspectRatio}, {MaxAspectRatio}).");
        if (!(HorizontalFlipProbability >= 0 && HorizontalFlipProbability <= 1))
            throw new ArgumentException($"HorizontalFlipProbability must be in [0, 1], got {HorizontalFlipProbability}.");
    }
}
