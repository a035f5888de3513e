using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using static TorchSharp.torch;

namespace Cnn.MLNet.Explain;

/// <summary>
/// One image preprocessed for a model (evaluation resize, centre crop, normalisation), with the picture the model sees: the
/// crop de-normalised to 8-bit RGB.
/// </summary>
public sealed class PreparedImage
{
    private readonly float[] _chw;

    private PreparedImage(float[] chw, PreprocessOptions options)
    {
        _chw = chw;
        Options = options;
        Seen = Denormalise(chw, options.Height, options.Width, options);
    }

    /// <summary>The preprocessing applied.</summary>
    public PreprocessOptions Options { get; }

    /// <summary>The crop the model sees, de-normalised (<see cref="Denormalise"/>).</summary>
    public RgbImage Seen { get; }

    /// <summary>Decodes and preprocesses <paramref name="image"/> with <paramref name="options"/>' evaluation transform.</summary>
    /// <exception cref="ImageDecodeException">The image cannot be read.</exception>
    public static PreparedImage From(ImageSample image, PreprocessOptions options)
    {
        ArgumentNullException.ThrowIfNull(image);
        var preprocessor = new ImagePreprocessor(options);
        var chw = new float[options.SampleLength];
        preprocessor.Preprocess(image.Decode(options.Channels, options.Alpha), chw);
        return new PreparedImage(chw, options);
    }

    /// <summary>The model input, a new float tensor [1, C, H, W] on <paramref name="device"/> (the CPU when null) that the caller disposes.</summary>
    public Tensor ToTensor(Device? device = null)
    {
        using var cpu = tensor(_chw, [1, Options.Channels, Options.Height, Options.Width]);
        return cpu.to(device ?? CPU).clone();
    }

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
