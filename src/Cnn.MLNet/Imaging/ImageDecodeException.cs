namespace Cnn.MLNet.Imaging;

/// <summary>
/// An image could not be read or decoded. <see cref="Exception.Message"/> names the image (<see cref="Source"/>: a file path,
/// or a row/sample name such as <c>row 17</c>) and the reason.
/// </summary>
public sealed class ImageDecodeException : Exception
{
    /// <summary>Creates the exception for the image called <paramref name="source"/>.</summary>
    /// <param name="source">The file path or row/sample name of the image.</param>
    /// <param name="reason">Why it could not be decoded (e.g. "not a supported image format").</param>
    /// <param name="inner">The underlying exception, if any.</param>
    public ImageDecodeException(string source, string reason, Exception? inner = null)
        : base($"Cannot decode image '{source}': {reason}", inner)
    {
        Source = source;
        Reason = reason;
    }

    /// <summary>The file path or row/sample name of the image that failed.</summary>
    public new string Source { get; }

    /// <summary>Why the image could not be decoded, without the image name.</summary>
    public string Reason { get; }
}
