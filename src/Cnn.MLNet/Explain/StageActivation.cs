namespace Cnn.MLNet.Explain;

/// <summary>The activation of one feature stage for one image: <see cref="Channels"/> maps of <see cref="Height"/>×<see cref="Width"/>.</summary>
/// <param name="Stage">The stage (index into the backbone's <c>FeatureInfo</c>).</param>
/// <param name="StageName">The stage's module name (e.g. <c>layer1</c>).</param>
/// <param name="Channels">Number of channels.</param>
/// <param name="Height">Height of each map.</param>
/// <param name="Width">Width of each map.</param>
/// <param name="Values">CHW floats, <c>Channels · Height · Width</c> of them.</param>
public sealed record StageActivation(int Stage, string StageName, int Channels, int Height, int Width, float[] Values)
{
    /// <summary>The map of channel <paramref name="channel"/>, row-major.</summary>
    public ReadOnlySpan<float> Channel(int channel)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(channel);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(channel, Channels);
        return Values.AsSpan(channel * Height * Width, Height * Width);
    }
}
