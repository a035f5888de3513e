namespace Cnn.Backbones.Weights.Download;

/// <summary>What a download is doing when it reports <see cref="DownloadProgress"/>.</summary>
public enum DownloadStage
{
    /// <summary>Another process is downloading the same file; this one waits for it.</summary>
    WaitingForOtherProcess,

    /// <summary>Bytes are arriving.</summary>
    Downloading,

    /// <summary>The file is complete, verified and in the cache.</summary>
    Completed,
}

/// <summary>One report on a download, for a progress bar or a log line.</summary>
/// <param name="Stage">What the download is doing.</param>
/// <param name="Url">The address the bytes come from.</param>
/// <param name="FileName">The file's name, for display.</param>
/// <param name="BytesReceived">Bytes of the file on disk so far (a resumed download counts its earlier part).</param>
/// <param name="TotalBytes">The file's size, where the server announced it.</param>
/// <param name="BytesPerSecond">Transfer rate of this attempt, in bytes per second.</param>
/// <param name="Elapsed">Time since this download started.</param>
public readonly record struct DownloadProgress(
    DownloadStage Stage, Uri Url, string FileName, long BytesReceived, long? TotalBytes, double BytesPerSecond, TimeSpan Elapsed)
{
    /// <summary>Fraction done, 0 to 1, where the size is known.</summary>
    public double? Fraction => TotalBytes is > 0 ? Math.Clamp((double)BytesReceived / TotalBytes.Value, 0, 1) : null;

    /// <summary>Estimated time left at the current rate, where the size is known and bytes are flowing.</summary>
    public TimeSpan? Remaining => TotalBytes is { } total && BytesPerSecond > 0
        ? TimeSpan.FromSeconds(Math.Max(0, total - BytesReceived) / BytesPerSecond)
        : null;
}
