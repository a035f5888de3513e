namespace Cnn.MLNet.Imaging;

/// <summary>
/// Turns a <see cref="DecodedImage"/> into normalized CHW float32 model input, as torchvision does on a PIL image:
/// evaluation <c>Resize(floor(size / crop_pct)) → CenterCrop(size) → ToTensor() → Normalize(mean, std)</c>, and training
/// <c>RandomResizedCrop(size) → RandomHorizontalFlip() → ToTensor() → Normalize(mean, std)</c>.
/// </summary>
/// <remarks>
/// <para>Resizing reproduces PIL's <c>Image.resize</c> exactly (see <see cref="ResizeInterpolation"/>), so outputs equal
/// torchvision's up to float rounding. For a square input size the evaluation resize scales the shorter image side to
/// <c>floor(size / CropPct)</c> keeping the aspect ratio (torchvision <c>Resize(int)</c>); for a non-square input size H×W the
/// image is resized to exactly <c>floor(H / CropPct)</c>×<c>floor(W / CropPct)</c> (timm's behaviour for tuple sizes). A crop
/// larger than the resized image is zero-padded as torchvision's <c>CenterCrop</c> does. When the resized size equals the image
/// size no resampling happens, so with CropPct = 1 an image already at the input size passes through unchanged.</para>
/// <para>Instances are immutable and thread-safe: scratch buffers are per thread and reused, so steady-state preprocessing
/// allocates nothing.</para>
/// </remarks>
public sealed class ImagePreprocessor
{
    private readonly float[] _lookup; // [channel * 256 + value] → normalized value

    /// <summary>Creates a preprocessor for <paramref name="options"/>.</summary>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public ImagePreprocessor(PreprocessOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        _lookup = new float[options.Channels * 256];
        for (int c = 0; c < options.Channels; c++)
        {
            float mean = options.Mean[c], std = options.Std[c];
            for (int v = 0; v < 256; v++)
                _lookup[c * 256 + v] = ((float)v / 255f - mean) / std; // float32 as ToTensor + Normalize
        }
    }

    /// <summary>The options this preprocessor applies.</summary>
    public PreprocessOptions Options { get; }

    /// <summary>Floats per preprocessed image: <c>Channels * Height * Width</c>.</summary>
    public int SampleLength => Options.SampleLength;

    /// <summary>The size an image of <paramref name="width"/>×<paramref name="height"/> is resized to before the evaluation center crop.</summary>
    public (int Width, int Height) GetEvaluationResize(int width, int height)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        var o = Options;
        if (o.Height != o.Width)
            return ((int)Math.Floor(o.Width / o.CropPct), (int)Math.Floor(o.Height / o.CropPct));
        int size = (int)Math.Floor(o.Height / o.CropPct);
        if (size < 1) size = 1;
        if (width <= height)
            return (size, Math.Max(1, (int)((double)((long)size * height) / width)));
        return (Math.Max(1, (int)((double)((long)size * width) / height)), size);
    }

    /// <summary>Evaluation transform: resize, center crop, scale to [0, 1], normalize; writes CHW floats.</summary>
    /// <param name="image">The decoded image; its channel count must equal <see cref="PreprocessOptions.Channels"/>.</param>
    /// <param name="destination">At least <see cref="SampleLength"/> floats; the first <see cref="SampleLength"/> are written.</param>
    public void Preprocess(DecodedImage image, Span<float> destination)
    {
        Check(image, destination);
        var (rw, rh) = GetEvaluationResize(image.Width, image.Height);
        int top = CenterOffset(rh, Options.Height), left = CenterOffset(rw, Options.Width);
        Run(image, new CropRegion(0, 0, image.Height, image.Width), rw, rh, top, left, flip: false, destination);
    }

    /// <summary>
    /// Training transform: <see cref="RandomResizedCrop"/> to the input size, then a horizontal flip with probability
    /// <see cref="PreprocessOptions.HorizontalFlipProbability"/>, then scale and normalize; writes CHW floats.
    /// </summary>
    /// <param name="image">The decoded image; its channel count must equal <see cref="PreprocessOptions.Channels"/>.</param>
    /// <param name="random">Random source; the same seed gives the same output.</param>
    /// <param name="destination">At least <see cref="SampleLength"/> floats.</param>
    /// <returns>The crop taken and whether the image was flipped.</returns>
    public (CropRegion Crop, bool Flipped) PreprocessForTraining(DecodedImage image, Random random, Span<float> destination)
    {
        Check(image, destination);
        ArgumentNullException.ThrowIfNull(random);
        var o = Options;
        var crop = RandomResizedCrop.GetParameters(image.Width, image.Height, random, o.MinScale, o.MaxScale, o.MinAspectRatio, o.MaxAspectRatio);
        bool flip = random.NextDouble() < o.HorizontalFlipProbability;
        Run(image, crop, o.Width, o.Height, 0, 0, flip, destination);
        return (crop, flip);
    }

    /// <summary>
    /// torchvision's <c>resized_crop</c> (+ optional <c>hflip</c>) with explicit parameters: crops <paramref name="crop"/>, resizes it
    /// to the input size, flips if asked, then scales and normalizes; writes CHW floats.
    /// </summary>
    /// <param name="image">The decoded image; its channel count must equal <see cref="PreprocessOptions.Channels"/>.</param>
    /// <param name="crop">A region inside the image.</param>
    /// <param name="horizontalFlip">Mirror left-right after resizing.</param>
    /// <param name="destination">At least <see cref="SampleLength"/> floats.</param>
    public void PreprocessCrop(DecodedImage image, CropRegion crop, bool horizontalFlip, Span<float> destination)
    {
        Check(image, destination);
        if (crop.Top < 0 || crop.Left < 0 || crop.Height < 1 || crop.Width < 1 || crop.Top + crop.Height > image.Height || crop.Left + crop.Width > image.Width)
            throw new ArgumentOutOfRangeException(nameof(crop), crop, $"The crop must lie inside the {image.Width}x{image.Height} image.");
        Run(image, crop, Options.Width, Options.Height, 0, 0, horizontalFlip, destination);
    }

    // torchvision CenterCrop: round-half-even offset when the image is larger; zero padding of (crop - size) // 2 before when smaller.
    private static int CenterOffset(int size, int crop) => size >= crop ? (int)Math.Round((size - crop) / 2.0) : -((crop - size) / 2);

    private void Check(DecodedImage image, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Width < 1 || image.Height < 1) throw new ArgumentException("The image is empty.", nameof(image));
        if (image.Channels != Options.Channels)
            throw new ArgumentException($"The image has {image.Channels} channel(s) but the model expects {Options.Channels}; decode it with channels = {Options.Channels}.", nameof(image));
        if (destination.Length < SampleLength)
            throw new ArgumentException($"The destination holds {destination.Length} floats; {SampleLength} are needed ({Options.Channels}x{Options.Height}x{Options.Width}).", nameof(destination));
    }

    /// <summary>Resizes <paramref name="region"/> to <paramref name="resizedWidth"/>×<paramref name="resizedHeight"/>, takes the H×W window at (top, left) (zero outside), flips, normalizes to CHW.</summary>
    private void Run(DecodedImage image, CropRegion region, int resizedWidth, int resizedHeight, int top, int left, bool flip, Span<float> destination)
    {
        int channels = Options.Channels, height = Options.Height, width = Options.Width;
        var scratch = ResampleScratch.Current;
        int stride = width * channels;
        var window = scratch.Window(height * stride).AsSpan(0, height * stride);

        int x0 = Math.Max(0, left), x1 = Math.Min(resizedWidth, left + width);
        int y0 = Math.Max(0, top), y1 = Math.Min(resizedHeight, top + height);
        bool padded = x0 != left || y0 != top || x1 != left + width || y1 != top + height;
        if (padded) window.Clear();
        if (x1 > x0 && y1 > y0)
        {
            var target = window[((y0 - top) * stride + (x0 - left) * channels)..];
            Resampler.ResizeWindow(image.Pixels, image.Stride, channels, region, resizedWidth, resizedHeight,
                x0, y0, x1 - x0, y1 - y0, Options.Interpolation, target, stride, scratch);
        }

        int plane = height * width;
        var lookup = _lookup.AsSpan();
        for (int c = 0; c < channels; c++)
        {
            var lut = lookup.Slice(c * 256, 256);
            var output = destination.Slice(c * plane, plane);
            for (int y = 0; y < height; y++)
            {
                var row = window.Slice(y * stride, stride);
                var outRow = output.Slice(y * width, width);
                if (flip)
                    for (int x = 0, i = (width - 1) * channels + c; x < width; x++, i -= channels) outRow[x] = lut[row[i]];
                else
                    for (int x = 0, i = c; x < width; x++, i += channels) outRow[x] = lut[row[i]];
            }
        }
    }
}
