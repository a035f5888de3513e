namespace Cnn.Backbones.Weights.Download;

/// <summary>Why a weight file could not be provided (<see cref="WeightDownloadException.Reason"/>).</summary>
public enum WeightDownloadFailure
{
    /// <summary>The request is malformed: no usable SHA-256 prefix, an unusable URL.</summary>
    InvalidRequest,

    /// <summary>Plain <c>http://</c> to a host other than loopback without <see cref="WeightStoreOptions.AllowInsecureHttp"/>.</summary>
    InsecureUrl,

    /// <summary>Offline, and the file is not in the cache (or the cached one failed its check).</summary>
    NotAvailableOffline,

    /// <summary>The bytes do not have the expected SHA-256 (or git) hash; nothing was cached.</summary>
    HashMismatch,

    /// <summary>The bytes do not have the announced size; nothing was cached.</summary>
    SizeMismatch,

    /// <summary>The server answered with an error status (e.g. 404), or not at all after the retries.</summary>
    Http,

    /// <summary>The hub repository has none of the weight files asked for.</summary>
    FileNotInRepository,

    /// <summary>Another process held the download lock longer than <see cref="WeightStoreOptions.LockTimeout"/>.</summary>
    LockTimeout,

    /// <summary>The cache folder cannot be written (permissions, disk full).</summary>
    CacheNotWritable,
}

/// <summary>
/// A weight file could not be downloaded, verified or found in the cache. The message is complete and actionable on its own: it
/// names the URL, the cache path and what to do.
/// </summary>
public sealed class WeightDownloadException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="reason">Why.</param>
    /// <param name="message">The complete message (naming URL and path).</param>
    /// <param name="url">The URL concerned, if any.</param>
    /// <param name="cachePath">The cache path concerned, if any.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public WeightDownloadException(WeightDownloadFailure reason, string message, Uri? url = null, string? cachePath = null, Exception? inner = null)
        : base(message, inner)
    {
        Reason = reason;
        Url = url;
        CachePath = cachePath;
    }

    /// <summary>Why the file could not be provided.</summary>
    public WeightDownloadFailure Reason { get; }

    /// <summary>The URL concerned, if any.</summary>
    public Uri? Url { get; }

    /// <summary>The path in the cache the file belongs at, if any.</summary>
    public string? CachePath { get; }

    /// <summary>The expected hash, for <see cref="WeightDownloadFailure.HashMismatch"/> and offline misses.</summary>
    public string? ExpectedHash { get; init; }

    /// <summary>The hash the bytes had, for <see cref="WeightDownloadFailure.HashMismatch"/>.</summary>
    public string? ActualHash { get; init; }

    /// <summary>The HTTP status the server answered with, for <see cref="WeightDownloadFailure.Http"/>.</summary>
    public int? StatusCode { get; init; }
}
