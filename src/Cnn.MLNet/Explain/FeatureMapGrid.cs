namespace Cnn.MLNet.Explain;

/// <summary>
/// Draws the channels of one stage's activation as a grid of grey tiles, row by row (channel 0 top left): each channel is
/// min–max normalised on its own, <c>round(255 · (a − min_c) / (max_c − min_c))</c>, so black is the channel's lowest
/// value and white its highest; a constant channel is black.
/// </summary>
public static class FeatureMapGrid
{
    /// <summary>Renders the first <see cref="FeatureMapGridOptions.MaxChannels"/> channels of <paramref name="activation"/>.</summary>
    /// <param name="activation">The stage's activation (e.g. from <see cref="FeatureMaps.Capture"/>).</param>
    /// <param name="options">Layout; null for the defaults.</param>
    /// <exception cref="ArgumentException">The activation's values do not match its shape.</exception>
    public static RgbImage Render(StageActivation activation, FeatureMapGridOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(activation);
        if (activation.Channels < 1 || activation.Height < 1 || activation.Width < 1 ||
            activation.Values.Length != (long)activation.Channels * activation.Height * activation.Width)
            throw new ArgumentException(
                $"The activation has {activation.Values.Length} values for shape [{activation.Channels}, {activation.Height}, {activation.Width}].", nameof(activation));
        options ??= new FeatureMapGridOptions();
        options.Validate();
        var layout = GridLayout.For(activation, options);
        var pixels = new byte[layout.ImageWidth * layout.ImageHeight * 3];
        for (int i = 0; i < pixels.Length; i += 3)
            (pixels[i], pixels[i + 1], pixels[i + 2]) = options.SeparatorColor;
        for (int channel = 0; channel < layout.Tiles; channel++)
            DrawTile(activation.Channel(channel), activation.Width, layout, layout.TileOrigin(channel), pixels);
        return new RgbImage(layout.ImageWidth, layout.ImageHeight, pixels);
    }

    private static void DrawTile(ReadOnlySpan<float> map, int mapWidth, GridLayout layout, (int X, int Y) origin, byte[] pixels)
    {
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        foreach (float v in map)
        {
            min = Math.Min(min, v);
            max = Math.Max(max, v);
        }
        float range = max - min;
        for (int y = 0; y < layout.TileHeight; y++)
        {
            int row = origin.Y + y, source = y / layout.Scale * mapWidth;
            for (int x = 0; x < layout.TileWidth; x++)
            {
                float v = map[source + x / layout.Scale];
                byte grey = range > 0 ? (byte)MathF.Round(255f * (v - min) / range) : (byte)0;
                int o = (row * layout.ImageWidth + origin.X + x) * 3;
                pixels[o] = pixels[o + 1] = pixels[o + 2] = grey;
            }
        }
    }

    /// <summary>Where the tiles go: <see cref="Columns"/>×<see cref="Rows"/> tiles of <see cref="TileWidth"/>×<see cref="TileHeight"/>.</summary>
    private sealed record GridLayout(int Tiles, int Columns, int Rows, int Scale, int TileWidth, int TileHeight, int Separator)
    {
        public int ImageWidth => Columns * TileWidth + (Columns + 1) * Separator;

        public int ImageHeight => Rows * TileHeight + (Rows + 1) * Separator;

        public static GridLayout For(StageActivation activation, FeatureMapGridOptions options)
        {
            int tiles = Math.Min(activation.Channels, options.MaxChannels);
            int columns = Math.Min(options.Columns ?? (int)Math.Ceiling(Math.Sqrt(tiles)), tiles);
            int rows = (tiles + columns - 1) / columns;
            int longer = Math.Max(activation.Height, activation.Width);
            int scale = Math.Max(1, (options.MinTileSize + longer - 1) / longer);
            return new GridLayout(tiles, columns, rows, scale, activation.Width * scale, activation.Height * scale, options.Separator);
        }

        /// <summary>Top-left pixel of the tile of <paramref name="channel"/>.</summary>
        public (int X, int Y) TileOrigin(int channel) =>
            (Separator + channel % Columns * (TileWidth + Separator), Separator + channel / Columns * (TileHeight + Separator));
    }
}
