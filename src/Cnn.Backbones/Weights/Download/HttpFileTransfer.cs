using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Polly;
using Polly.Retry;

namespace Cnn.Backbones.Weights.Download;

/// <summary>
/// Moves one file from a URL into the cache: streams it into a partial file while hashing, resumes a partial file with a Range
/// request, retries transient failures with exponential backoff (Polly), follows redirects itself (checking each hop's scheme),
/// verifies the hash and the announced size, and only then renames the file into place.
/// </summary>
internal sealed class HttpFileTransfer : IDisposable
{
    private static readonly ProductInfoHeaderValue UserAgent = new("Cnn.MLNet", typeof(HttpFileTransfer).Assembly.GetName().Version?.ToString(3) ?? "1.0");
    private const int MaxRedirects = 10;
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromMilliseconds(100);

    private readonly WeightStoreOptions _options;
    private readonly VerifiedFiles _verified;
    private readonly HttpClient _client;
    private readonly ResiliencePipeline _retry;

    public HttpFileTransfer(WeightStoreOptions options, VerifiedFiles verified)
    {
        _options = options;
        _verified = verified;
        _client = options.HttpHandler is { } handler
            ? new HttpClient(handler, disposeHandler: false)
            : new HttpClient(new SocketsHttpHandler
            {
                AllowAutoRedirect = false, // followed by hand, so every hop's scheme is checked and the hub's headers are seen
                AutomaticDecompression = DecompressionMethods.None, // hashes are of the bytes as published
                ConnectTimeout = TimeSpan.FromSeconds(30),
                UseProxy = true, // HttpClient.DefaultProxy: HTTPS_PROXY / HTTP_PROXY / ALL_PROXY / NO_PROXY (and the system's on Windows)
            });
        _client.Timeout = Timeout.InfiniteTimeSpan; // large files: the stall timeout bounds each read instead
        _retry = options.MaxRetries == 0
            ? ResiliencePipeline.Empty
            : new ResiliencePipelineBuilder().AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = options.MaxRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.RetryDelay,
                ShouldHandle = new PredicateBuilder().Handle<TransientDownloadException>(),
            }).Build();
    }

    public void Dispose() => _client.Dispose();

    /// <summary>Refuses URLs the store must not fetch: anything but https, except http to loopback or when the user allowed it.</summary>
    public void EnsureAllowed(Uri url, string? cachePath)
    {
        if (url.Scheme == Uri.UriSchemeHttps) return;
        if (url.Scheme == Uri.UriSchemeHttp)
        {
            if (url.IsLoopback || _options.AllowInsecureHttp) return;
            throw new WeightDownloadException(WeightDownloadFailure.InsecureUrl,
                $"Refusing to download weights from {url} over plain http: the bytes could be altered on the way. Use an https:// URL " +
                "(or mirror), or set WeightStoreOptions.AllowInsecureHttp if this network is trusted.", url, cachePath);
        }
        throw new WeightDownloadException(WeightDownloadFailure.InvalidRequest,
            $"Cannot download weights from {url}: only https:// (and http:// to this machine) URLs are supported.", url, cachePath);
    }

    /// <summary>
    /// What the hub says about a file without downloading it (huggingface_hub's HEAD request): redirects within the host are
    /// followed, a redirect to another host (the CDN) is not; null when the repository has no such file.
    /// </summary>
    public Task<HubFileMetadata?> HeadHubFileAsync(Uri url, string cachePath, CancellationToken cancellation) =>
        WithRetriesAsync(url, cachePath, async token =>
        {
            var (response, finalUrl) = await SendAsync(HttpMethod.Head, url, 0, stopAtOtherHost: true, cachePath, token).ConfigureAwait(false);
            using (response)
            {
                if (response.StatusCode == HttpStatusCode.NotFound &&
                    FirstHeader(response, "X-Error-Code") is null or "EntryNotFound")
                    return (HubFileMetadata?)null;
                if (!IsRedirect(response.StatusCode) && !response.IsSuccessStatusCode) ThrowForStatus(response, finalUrl, cachePath);

                string? commit = FirstHeader(response, "X-Repo-Commit");
                string? etag = FirstHeader(response, "X-Linked-Etag") ?? response.Headers.ETag?.Tag ?? FirstHeader(response, "ETag");
                long? size = long.TryParse(FirstHeader(response, "X-Linked-Size"), out long linked) ? linked : response.Content.Headers.ContentLength;
                Uri download = IsRedirect(response.StatusCode) && response.Headers.Location is { } location ? new Uri(finalUrl, location) : finalUrl;
                if (etag is null)
                    throw new WeightDownloadException(WeightDownloadFailure.Http,
                        $"The hub at {url} did not send an ETag for the file, so it cannot be cached or verified. Check HF_ENDPOINT " +
                        "(a proxy may strip the header).", url, cachePath);
                return new HubFileMetadata(commit, NormalizeEtag(etag), size, download);
            }
        }, cancellation);

    /// <summary>
    /// Downloads <paramref name="url"/> into <paramref name="partialPath"/> (resuming what is there), verifies it against
    /// <paramref name="expected"/> and renames it to <paramref name="finalPath"/>. Returns the file's SHA-256. On a mismatch
    /// the partial file is deleted; on cancellation or a failure it stays for the next call to resume.
    /// </summary>
    public async Task<string> DownloadAsync(Uri url, string partialPath, string finalPath, ExpectedContent expected, CancellationToken cancellation)
    {
        string name = Path.GetFileName(finalPath);
        var clock = Stopwatch.StartNew();
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(finalPath)!);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw FileLock.NotWritable(finalPath, url, e);
        }

        string sha256 = await WithRetriesAsync(url, finalPath,
            token => AttemptAsync(url, partialPath, finalPath, expected, name, clock, token), cancellation).ConfigureAwait(false);

        long size = new FileInfo(partialPath).Length;
        if (expected.Size is { } want && want != size)
        {
            Delete(partialPath);
            throw new WeightDownloadException(WeightDownloadFailure.SizeMismatch,
                $"The file downloaded from {url} has {size} bytes, but the server announced {want}; it was not cached (nor at {finalPath}). " +
                "Try again; if it persists, the server or a proxy is sending a different file.", url, finalPath);
        }
        string? git = expected.GitBlobSha1 is null ? null : await ExpectedContent.GitBlobSha1Async(partialPath, cancellation).ConfigureAwait(false);
        if (!expected.IsMetBy(sha256, git))
        {
            Delete(partialPath);
            string actual = expected.DescribeActual(sha256, git);
            throw new WeightDownloadException(WeightDownloadFailure.HashMismatch,
                $"The file downloaded from {url} has {actual}, but {expected.Describe()} was expected; it was not cached (nor at {finalPath}). " +
                "The server, a mirror or a proxy sent different bytes: check CNN_WEIGHTS_MIRROR / HF_ENDPOINT and try again.", url, finalPath)
            {
                ExpectedHash = expected.Hash,
                ActualHash = git ?? sha256,
            };
        }
        try
        {
            File.Move(partialPath, finalPath, overwrite: true); // a rename within the folder: atomic
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw FileLock.NotWritable(finalPath, url, e);
        }
        _verified.Remember(finalPath, sha256, git);
        _options.Progress?.Report(new DownloadProgress(DownloadStage.Completed, url, name, size, size, size / Math.Max(clock.Elapsed.TotalSeconds, 1e-3), clock.Elapsed));
        return sha256;
    }

    private async Task<string> AttemptAsync(Uri url, string partialPath, string finalPath, ExpectedContent expected, string name, Stopwatch clock, CancellationToken cancellation)
    {
        for (int restart = 0; ; restart++)
        {
            long existing = File.Exists(partialPath) ? new FileInfo(partialPath).Length : 0;
            var (response, finalUrl) = await SendAsync(HttpMethod.Get, url, existing, stopAtOtherHost: false, finalPath, cancellation).ConfigureAwait(false);
            using (response)
            {
                long offset;
                long? total;
                if (existing > 0 && response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
                {
                    // The partial file is as long as the file (complete but for the rename) or longer (another file): keep or restart.
                    if (response.Content.Headers.ContentRange?.Length == existing)
                        return await ExpectedContent.Sha256Async(partialPath, cancellation).ConfigureAwait(false);
                    Delete(partialPath);
                    if (restart == 0) continue;
                    throw new TransientDownloadException($"{url} refused every byte range (HTTP 416).");
                }
                if (!response.IsSuccessStatusCode) ThrowForStatus(response, finalUrl, finalPath);

                if (existing > 0 && response.StatusCode == HttpStatusCode.PartialContent)
                {
                    var range = response.Content.Headers.ContentRange;
                    if (range?.From != existing)
                    {
                        Delete(partialPath); // a range we did not ask for: start over
                        if (restart == 0) continue;
                        throw new TransientDownloadException($"{url} answered a Range request for bytes {existing}- with {range}.");
                    }
                    offset = existing;
                    total = range.Length;
                }
                else
                {
                    offset = 0; // a whole file (200), also when the server ignored the Range header: restart from byte 0
                    total = response.Content.Headers.ContentLength;
                }
                if (expected.Size is { } want && total is { } announced && want != announced)
                {
                    Delete(partialPath);
                    throw new WeightDownloadException(WeightDownloadFailure.SizeMismatch,
                        $"{finalUrl} announced {announced} bytes, but {want} were expected; nothing was cached (at {finalPath}).", url, finalPath);
                }
                total ??= expected.Size;
                return await ReceiveAsync(response, url, partialPath, offset, total, name, clock, cancellation).ConfigureAwait(false);
            }
        }
    }

    private async Task<string> ReceiveAsync(HttpResponseMessage response, Uri url, string partialPath, long offset, long? total, string name,
                                            Stopwatch clock, CancellationToken cancellation)
    {
        using var sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 17];
        FileStream file;
        try
        {
            file = new FileStream(partialPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.Asynchronous);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw FileLock.NotWritable(partialPath, url, e);
        }
        await using (file.ConfigureAwait(false))
        {
            // Hash what an earlier attempt wrote, then drop anything past it.
            long kept = 0;
            while (kept < offset)
            {
                int read = await file.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, offset - kept)), cancellation).ConfigureAwait(false);
                if (read == 0) break;
                sha256.AppendData(buffer, 0, read);
                kept += read;
            }
            file.SetLength(offset);
            file.Position = offset;

            Stream body;
            try
            {
                body = await response.Content.ReadAsStreamAsync(cancellation).ConfigureAwait(false);
            }
            catch (Exception e) when (IsNetworkFailure(e, cancellation))
            {
                throw new TransientDownloadException($"Reading {url} failed: {e.Message}", e);
            }
            await using (body.ConfigureAwait(false))
            {
                long received = offset;
                var attempt = Stopwatch.StartNew();
                TimeSpan lastReport = -ProgressInterval;
                using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
                while (true)
                {
                    int read;
                    stall.CancelAfter(_options.StallTimeout);
                    try
                    {
                        read = await body.ReadAsync(buffer, stall.Token).ConfigureAwait(false);
                    }
                    catch (Exception e) when (IsNetworkFailure(e, cancellation))
                    {
                        await file.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                        throw new TransientDownloadException(
                            stall.IsCancellationRequested
                                ? $"{url} sent nothing for {_options.StallTimeout.TotalSeconds:0.#} s after {received} bytes."
                                : $"The connection to {url} broke after {received} of {total?.ToString() ?? "?"} bytes: {e.Message}", e);
                    }
                    if (read == 0) break;
                    try
                    {
                        await file.WriteAsync(buffer.AsMemory(0, read), cancellation).ConfigureAwait(false);
                    }
                    catch (IOException e)
                    {
                        throw FileLock.NotWritable(partialPath, url, e);
                    }
                    sha256.AppendData(buffer, 0, read);
                    received += read;
                    if (received - offset > 0 && attempt.Elapsed - lastReport >= ProgressInterval)
                    {
                        lastReport = attempt.Elapsed;
                        _options.Progress?.Report(new DownloadProgress(DownloadStage.Downloading, url, name, received, total,
                            (received - offset) / Math.Max(attempt.Elapsed.TotalSeconds, 1e-3), clock.Elapsed));
                    }
                }
                try
                {
                    await file.FlushAsync(cancellation).ConfigureAwait(false);
                    file.Flush(flushToDisk: true);
                }
                catch (IOException e)
                {
                    throw FileLock.NotWritable(partialPath, url, e);
                }
                if (total is { } expectedTotal && received < expectedTotal)
                    throw new TransientDownloadException($"The connection to {url} closed after {received} of {expectedTotal} bytes.");
                return Convert.ToHexStringLower(sha256.GetHashAndReset());
            }
        }
    }

    private async Task<T> WithRetriesAsync<T>(Uri url, string cachePath, Func<CancellationToken, Task<T>> attempt, CancellationToken cancellation)
    {
        try
        {
            return await _retry.ExecuteAsync(async token => await attempt(token).ConfigureAwait(false), cancellation).ConfigureAwait(false);
        }
        catch (TransientDownloadException e)
        {
            int attempts = _options.MaxRetries + 1;
            throw new WeightDownloadException(WeightDownloadFailure.Http,
                $"Could not download {url} (to {cachePath}) after {attempts} attempt{(attempts == 1 ? "" : "s")}: {e.Message} " +
                "Check the network (and HTTPS_PROXY), then run again: the download resumes where it stopped. Without network, fetch the " +
                "file elsewhere and place it at that path.", url, cachePath, e) { StatusCode = e.StatusCode };
        }
    }

    private async Task<(HttpResponseMessage Response, Uri Url)> SendAsync(HttpMethod method, Uri url, long rangeFrom, bool stopAtOtherHost,
                                                                         string cachePath, CancellationToken cancellation)
    {
        for (int hop = 0; ; hop++)
        {
            EnsureAllowed(url, cachePath);
            using var request = new HttpRequestMessage(method, url);
            request.Headers.UserAgent.Add(UserAgent);
            request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));
            if (rangeFrom > 0) request.Headers.Range = new RangeHeaderValue(rangeFrom, null);
            HttpResponseMessage response;
            try
            {
                response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellation).ConfigureAwait(false);
            }
            catch (Exception e) when (IsNetworkFailure(e, cancellation))
            {
                throw new TransientDownloadException($"Could not reach {url}: {e.Message}", e);
            }
            if (!IsRedirect(response.StatusCode) || response.Headers.Location is not { } location) return (response, url);
            var next = new Uri(url, location);
            if (stopAtOtherHost && !string.Equals(next.Host, url.Host, StringComparison.OrdinalIgnoreCase)) return (response, url);
            response.Dispose();
            if (hop >= MaxRedirects)
                throw new WeightDownloadException(WeightDownloadFailure.Http,
                    $"{url} redirected more than {MaxRedirects} times; check the URL (and CNN_WEIGHTS_MIRROR / HF_ENDPOINT).", url, cachePath);
            url = next;
        }
    }

    private static void ThrowForStatus(HttpResponseMessage response, Uri url, string cachePath)
    {
        int status = (int)response.StatusCode;
        string reason = $"HTTP {status} {response.ReasonPhrase}".TrimEnd();
        if (status is 408 or 425 or 429 || status >= 500)
            throw new TransientDownloadException($"{url} answered {reason}.") { StatusCode = status };
        string hint = status switch
        {
            401 or 403 => " The file is private, gated or forbidden; public weights need no login.",
            404 => " Check the name and revision (and CNN_WEIGHTS_MIRROR / HF_ENDPOINT, which must serve the same paths).",
            _ => "",
        };
        throw new WeightDownloadException(WeightDownloadFailure.Http, $"{url} answered {reason}; nothing was cached (at {cachePath}).{hint}", url, cachePath)
        {
            StatusCode = status,
        };
    }

    private static bool IsRedirect(HttpStatusCode status) => (int)status is 301 or 302 or 303 or 307 or 308;

    private static bool IsNetworkFailure(Exception e, CancellationToken cancellation) =>
        e is HttpRequestException or IOException || (e is OperationCanceledException && !cancellation.IsCancellationRequested);

    private static string? FirstHeader(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values)
            ? values.FirstOrDefault() : null;

    // huggingface_hub's _normalize_etag: drop a weak validator's W/ and the quotes.
    private static string NormalizeEtag(string etag)
    {
        string tag = etag.Trim();
        if (tag.StartsWith("W/", StringComparison.Ordinal)) tag = tag[2..];
        return tag.Trim('"');
    }

    private static void Delete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left in place: the next attempt overwrites it or its check fails again.
        }
    }
}

/// <summary>What the hub said about one file: the commit, ETag and size, and where to fetch the bytes (the CDN).</summary>
internal sealed record HubFileMetadata(string? Commit, string Etag, long? Size, Uri DownloadUrl);

/// <summary>A failure worth another attempt (connection lost, time-out, HTTP 408/429/5xx); retried, then reported as a <see cref="WeightDownloadException"/>.</summary>
internal sealed class TransientDownloadException(string message, Exception? inner = null) : Exception(message, inner)
{
    public int? StatusCode { get; init; }
}
