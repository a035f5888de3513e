using static TorchSharp.torch;

namespace Cnn.Backbones.Weights.Timm;

/// <summary>
/// How one tensor changes between this library's layout and a foreign one (a reshape; the values are the same). Each direction
/// returns a new tensor handle (a view or alias of the input, which is not modified) and leaves tensors it does not concern
/// (a bias beside a reshaped weight) as aliases.
/// </summary>
internal abstract class TensorTransform
{
    /// <summary>
    /// A per-channel scale stored as (C, 1, 1) here and (C,) in the foreign layout (ConvNeXt's <c>layer_scale</c> against timm's
    /// <c>gamma</c>).
    /// </summary>
    public static TensorTransform ChannelScale { get; } = new ChannelScaleTransform();

    /// <summary>
    /// A linear layer here that is a k×k convolution over a k×k map in the foreign layout: weight (O, I·k·k) against (O, I, k, k)
    /// (MobileNetV3's <c>classifier.0</c> against timm's 1×1 <c>conv_head</c>, VGG's <c>classifier.0</c> against timm's 7×7
    /// <c>pre_logits.fc1</c>). The bias is the same.
    /// </summary>
    /// <param name="kernel">The convolution's kernel size k.</param>
    public static TensorTransform ConvAsLinear(int kernel) => new ConvAsLinearTransform(kernel);

    /// <summary>The tensor in this library's layout.</summary>
    /// <param name="foreign">The tensor in the foreign layout.</param>
    /// <param name="key">Its key, for messages.</param>
    public abstract Tensor ToOurs(Tensor foreign, string key);

    /// <summary>The tensor in the foreign layout.</summary>
    /// <param name="ours">The tensor in this library's layout.</param>
    /// <param name="key">Its key, for messages.</param>
    public abstract Tensor ToForeign(Tensor ours, string key);

    private static InvalidDataException Unexpected(string key, Tensor t, string expected) =>
        new($"Tensor '{key}' has shape [{string.Join(", ", t.shape)}]; expected {expected}.");

    private sealed class ChannelScaleTransform : TensorTransform
    {
        public override Tensor ToOurs(Tensor foreign, string key) => foreign.dim() switch
        {
            1 => foreign.reshape(foreign.shape[0], 1, 1),
            _ => throw Unexpected(key, foreign, "(C,) for a per-channel scale"),
        };

        public override Tensor ToForeign(Tensor ours, string key) =>
            ours.dim() == 3 && ours.shape[1] == 1 && ours.shape[2] == 1 ? ours.reshape(ours.shape[0]) : throw Unexpected(key, ours, "(C, 1, 1) for a per-channel scale");

        public override string ToString() => "(C,1,1) ⇔ (C,)";
    }

    private sealed class ConvAsLinearTransform(int kernel) : TensorTransform
    {
        public override Tensor ToOurs(Tensor foreign, string key) => foreign.dim() switch
        {
            1 => foreign.alias(),
            4 when foreign.shape[2] == kernel && foreign.shape[3] == kernel => foreign.reshape(foreign.shape[0], -1),
            _ => throw Unexpected(key, foreign, $"a {kernel}×{kernel} convolution weight (O, I, {kernel}, {kernel}) or a bias"),
        };

        public override Tensor ToForeign(Tensor ours, string key) => ours.dim() switch
        {
            1 => ours.alias(),
            2 when ours.shape[1] % (kernel * kernel) == 0 => ours.reshape(ours.shape[0], ours.shape[1] / (kernel * kernel), kernel, kernel),
            _ => throw Unexpected(key, ours, $"a linear weight (O, I·{kernel * kernel}) or a bias"),
        };

        public override string ToString() => $"Linear ⇔ {kernel}×{kernel} conv";
    }
}
