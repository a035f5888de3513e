namespace Cnn.MLNet.Explain;

/// <summary>Layout of a <see cref="FeatureMapGrid"/> picture.</summary>
public sealed record FeatureMapGridOptions
{
    /// <summary>How many channels are drawn: the first ones, up to this many (default 64).</summary>
    public int MaxChannels { get; init; } = 64;

    /// <summary>Tiles per row; null for <c>ceil(sqrt(channels drawn))</c>.</summary>
    public int? Columns { get; init; }

    /// <summary>
    /// Smallest side of a tile in pixels: maps are enlarged by the smallest whole factor (nearest neighbour, so each activation
    /// stays a visible block) that makes their longer side at least this long (default 48; 1 keeps maps at their size).
    /// </summary>
    public int MinTileSize { get; init; } = 48;

    /// <summary>Width in pixels of the lines between tiles and around the grid (default 2).</summary>
    public int Separator { get; init; } = 2;

    /// <summary>Colour of the separator lines and of unused cells (default white).</summary>
    public (byte R, byte G, byte B) SeparatorColor { get; init; } = (255, 255, 255);

    /// <summary>Throws when an option is out of range.</summary>
    public void Validate()
    {
        if (MaxChannels < 1) throw new ArgumentOutOfRangeException(nameof(MaxChannels), MaxChannels, "MaxChannels must be >= 1.");
        if (Columns is < 1) throw new ArgumentOutOfRangeException(nameof(Columns), Columns, "Columns must be >= 1 or null.");
        if (MinTileSize < 1) throw new ArgumentOutOfRangeException(nameof(MinTileSize), MinTileSize, "MinTileSize must be >= 1.");
        if (Separator < 0) throw new ArgumentOutOfRangeException(nameof(Separator), Separator, "Separator must be >= 0.");
    }
}
