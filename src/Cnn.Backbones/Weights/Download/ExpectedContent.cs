using System.Security.Cryptography;
using System.Text;

namespace Cnn.Backbones.Weights.Download;

/// <summary>
/// What a file's bytes must be: a SHA-256 prefix (torchvision's file names, the hub's LFS ETags, full length there), a git blob
/// SHA-1 (the hub's ETag of a file kept in git itself), and/or a size. A check with none of them accepts any bytes.
/// </summary>
internal sealed record ExpectedContent(string? Sha256Prefix, string? GitBlobSha1, long? Size)
{
    /// <summary>The hash a message should show as expected.</summary>
    public string Describe() =>
        Sha256Prefix is not null ? $"SHA-256 {Sha256Prefix}" + (Sha256Prefix.Length < 64 ? "… (a prefix)" : "")
        : GitBlobSha1 is not null ? $"git blob SHA-1 {GitBlobSha1}"
        : Size is not null ? $"{Size} bytes"
        : "no known hash";

    /// <summary>The expected hash alone, for <see cref="WeightDownloadException.ExpectedHash"/>.</summary>
    public string? Hash => Sha256Prefix ?? GitBlobSha1;

    /// <summary>
    /// The expectation a hub ETag gives: 64 hex digits are the SHA-256 of an LFS file, 40 the git blob SHA-1 of a file kept in git;
    /// anything else says nothing about the bytes, and only the size is checked.
    /// </summary>
    public static ExpectedContent FromHubEtag(string etag, long? size) =>
        IsHex(etag, 64) ? new(etag, null, size) : IsHex(etag, 40) ? new(null, etag, size) : new(null, null, size);

    /// <summary>
    /// The SHA-256 prefix asked for, lower-case; at least 8 and at most 64 hex digits. Unlike torch.hub, which skips the check
    /// when a name carries no hash, a missing or short prefix is an error.
    /// </summary>
    public static string NormalizeSha256Prefix(string? prefix, Uri url)
    {
        string trimmed = prefix?.Trim() ?? "";
        if (trimmed.Length < 8 || trimmed.Length > 64 || !trimmed.All(char.IsAsciiHexDigit))
            throw new WeightDownloadException(WeightDownloadFailure.InvalidRequest,
                $"The SHA-256 prefix '{prefix}' given for {url} is not 8 to 64 hex digits. Every weight file must come with one so the " +
                "download can be verified: take it from the file's publisher (torchvision names files 'name-<hex>.pth').", url);
        return trimmed.ToLowerInvariant();
    }

    /// <summary>True when the hashes of a file meet this expectation (the size is checked by the caller).</summary>
    public bool IsMetBy(string sha256, string? gitBlobSha1) =>
        (Sha256Prefix is null || sha256.StartsWith(Sha256Prefix, StringComparison.Ordinal)) &&
        (GitBlobSha1 is null || string.Equals(gitBlobSha1, GitBlobSha1, StringComparison.Ordinal));

    /// <summary>The actual hash to show beside <see cref="Describe"/> in a mismatch.</summary>
    public string DescribeActual(string sha256, string? gitBlobSha1) =>
        Sha256Prefix is null && GitBlobSha1 is not null ? $"git blob SHA-1 {gitBlobSha1}" : $"SHA-256 {sha256}";

    /// <summary>The SHA-256 of a file, lower-case hex.</summary>
    public static async Task<string> Sha256Async(string path, CancellationToken cancellation)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellation).ConfigureAwait(false));
    }

    /// <summary>The git blob hash of a file: SHA-1 of <c>"blob &lt;size&gt;\0"</c> and the bytes (what the hub's ETag of a non-LFS file is).</summary>
    public static async Task<string> GitBlobSha1Async(string path, CancellationToken cancellation)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous);
        using var sha1 = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
        sha1.AppendData(Encoding.ASCII.GetBytes($"blob {stream.Length}\0"));
        var buffer = new byte[1 << 16];
        int read;
        while ((read = await stream.ReadAsync(buffer, cancellation).ConfigureAwait(false)) > 0) sha1.AppendData(buffer, 0, read);
        return Convert.ToHexStringLower(sha1.GetHashAndReset());
    }

    private static bool IsHex(string text, int length) => text.Length == length && text.All(char.IsAsciiHexDigit);
}
