using Cnn.Backbones.Weights.Catalog;

namespace Cnn.Backbones.Weights.Download;

/// <summary>
/// Provides pretrained weight files, downloaded once, hash-checked and cached where PyTorch and the Hugging Face hub cache them
/// (see <see cref="WeightStoreOptions"/>): torchvision-style files by URL and SHA-256 prefix (<see cref="GetFileAsync(Uri, string, CancellationToken)"/>) and hub
/// models by name (<see cref="GetHubFilesAsync"/>). A cached file is verified before its first use and the result remembered; a
/// damaged one is downloaded again (or, offline, refused), never returned. Downloads are resumed, retried, locked against other
/// processes fetching the same file, and leave at most a partial file when cancelled or interrupted. Thread-safe.
/// </summary>
public sealed class WeightStore : IDisposable
{
    private readonly VerifiedFiles _verified;
    private readonly Lazy<HttpFileTransfer> _transfer;

    /// <summary>
    /// The options of this asynchronous flow's <see cref="WeightStore()"/> instead of the process environment's: for tests, which
    /// run in parallel in one process and point downloads at their own loopback servers and cache folders.
    /// </summary>
    internal static readonly AsyncLocal<WeightStoreOptions?> OptionsForTests = new();

    /// <summary>Creates a store with the options of the process environment.</summary>
    public WeightStore()
        : this(OptionsForTests.Value ?? new WeightStoreOptions())
    {
    }

    /// <summary>Creates a store.</summary>
    /// <param name="options">Cache folders, endpoints and download settings; validated here. Set them before making the store: it keeps them.</param>
    /// <exception cref="ArgumentException">An option is unusable; the message names it.</exception>
    public WeightStore(WeightStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        _verified = new VerifiedFiles(options.VerifiedMemoDirectory);
        _transfer = new Lazy<HttpFileTransfer>(() => new HttpFileTransfer(options, _verified)); // offline use never creates a client
    }

    /// <summary>The options the store was made with.</summary>
    public WeightStoreOptions Options { get; }

    /// <summary>
    /// The URL a torchvision-style file is fetched from: <paramref name="url"/>, with <see cref="WeightStoreOptions.TorchvisionBaseUrl"/>
    /// replaced by <see cref="WeightStoreOptions.TorchvisionMirror"/> where one is set.
    /// </summary>
    /// <param name="url">The published URL.</param>
    public Uri EffectiveUrl(Uri url)
    {
        ArgumentNullException.ThrowIfNull(url);
        string published = url.AbsoluteUri;
        string baseUrl = WeightStoreOptions.TorchvisionBaseUrl.AbsoluteUri;
        if (Options.TorchvisionMirror is not { } mirror || !published.StartsWith(baseUrl, StringComparison.Ordinal)) return url;
        string mirrorBase = mirror.AbsoluteUri.EndsWith('/') ? mirror.AbsoluteUri : mirror.AbsoluteUri + "/";
        return new Uri(mirrorBase + published[baseUrl.Length..]);
    }

    /// <summary>
    /// Where a torchvision-style file is cached: <see cref="WeightStoreOptions.TorchCheckpointsDirectory"/> and the file name of
    /// <paramref name="url"/> (torch.hub's convention, so a file torchvision downloaded is found by name).
    /// </summary>
    /// <param name="url">The file's URL, e.g. <c>https://download.pytorch.org/models/resnet50-11ad3fa6.pth</c>.</param>
    /// <exception cref="WeightDownloadException">The URL does not end in a file name.</exception>
    public string CachePathOf(Uri url)
    {
        ArgumentNullException.ThrowIfNull(url);
        if (!url.IsAbsoluteUri)
            throw new WeightDownloadException(WeightDownloadFailure.InvalidRequest, $"'{url}' is not an absolute URL of a weight file.", url);
        string name = Uri.UnescapeDataString(url.AbsolutePath[(url.AbsolutePath.LastIndexOf('/') + 1)..]);
        if (name.Length == 0 || name is "." or ".." || name.IndexOfAny(['/', '\\']) >= 0 || name.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0)
            throw new WeightDownloadException(WeightDownloadFailure.InvalidRequest,
                $"The URL {url} does not end in a file name, so it has no place in the cache; give the URL of the file itself.", url);
        return Path.Combine(Options.TorchCheckpointsDirectory, name);
    }

    /// <summary>True when the file of <paramref name="url"/> is in the cache (not hashed here; <see cref="GetFileAsync(Uri, string, CancellationToken)"/> checks it before use).</summary>
    /// <param name="url">The file's URL.</param>
    public bool IsCached(Uri url) => File.Exists(CachePathOf(url));

    /// <summary>
    /// The path of a verified local copy of a torchvision-style file: from the cache if there and intact, else downloaded
    /// (resuming a partial download, waiting for another process fetching the same file) and verified before it is cached.
    /// </summary>
    /// <param name="url">The published URL, e.g. <c>https://download.pytorch.org/models/resnet50-11ad3fa6.pth</c>.</param>
    /// <param name="sha256Prefix">The first 8 to 64 hex digits of the file's SHA-256 (torchvision's file names carry them); required.</param>
    /// <param name="cancellation">Stops the download, leaving at most a partial file that the next call resumes.</param>
    /// <returns>The cached file's full path.</returns>
    /// <exception cref="WeightDownloadException">
    /// The prefix is missing or short, the URL is plain http to another host, the file is not cached while offline, the bytes
    /// do not match, or the server could not deliver them; the message names the URL, the path and what to do.
    /// </exception>
    public async Task<string> GetFileAsync(Uri url, string sha256Prefix, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(url);
        string prefix = ExpectedContent.NormalizeSha256Prefix(sha256Prefix, url);
        string path = CachePathOf(url);
        Uri source = EffectiveUrl(url);
        var expected = new ExpectedContent(prefix, null, null);

        var cached = await CheckCachedAsync(path, source, expected, cancellation).ConfigureAwait(false);
        if (cached?.Ok == true) return path;
        if (Options.Offline)
        {
            throw new WeightDownloadException(WeightDownloadFailure.NotAvailableOffline,
                $"Offline (CNN_OFFLINE or HF_HUB_OFFLINE is set) and " +
                (cached is { } damaged ? $"the cached {path} is damaged ({damaged.Problem}), so it was not used" : "the file is not cached") + ": " +
                $"download {source} on a machine with network and place it at {path} (its SHA-256 starts with {prefix}).", source, path)
            {
                ExpectedHash = prefix,
                ActualHash = cached?.Sha256,
            };
        }

        var transfer = _transfer.Value;
        transfer.EnsureAllowed(source, path);
        using (await FileLock.AcquireAsync(path + ".lock", Options.LockTimeout, source, () => ReportWaiting(source, path), cancellation).ConfigureAwait(false))
        {
            // Another process may have finished the file while this one waited for the lock.
            if (await CachedAsync(path, source, expected, cancellation).ConfigureAwait(false)) return path;
            await transfer.DownloadAsync(source, path + ".partial", path, expected, cancellation).ConfigureAwait(false);
        }
        return path;
    }

    /// <summary>The verified local copy of a catalog entry's file: <see cref="GetFileAsync(Uri, string, CancellationToken)"/> with the entry's URL and the SHA-256 prefix its file name carries.</summary>
    /// <param name="entry">The weights, e.g. resnet50's <c>IMAGENET1K_V2</c>.</param>
    /// <param name="cancellation">Stops the download, leaving at most a partial file that the next call resumes.</param>
    /// <returns>The cached file's full path.</returns>
    /// <exception cref="WeightDownloadException">As for the URL overload; also when the entry's file name carries no SHA-256 prefix.</exception>
    public Task<string> GetFileAsync(WeightsEntry entry, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var url = EntryUrl(entry);
        return GetFileAsync(url, WeightsEntry.HashPrefixOf(entry.FileName) ?? "", cancellation);
    }

    /// <summary>Where a catalog entry's file is cached (<see cref="CachePathOf(Uri)"/> of its URL).</summary>
    /// <param name="entry">The weights.</param>
    public string CachePathOf(WeightsEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return CachePathOf(EntryUrl(entry));
    }

    /// <summary>True when a catalog entry's file is in the cache (not hashed here).</summary>
    /// <param name="entry">The weights.</param>
    public bool IsCached(WeightsEntry entry) => File.Exists(CachePathOf(entry));

    /// <summary>
    /// The files of a Hugging Face hub model in the local hub cache, downloading what is missing from
    /// <c>{HF_ENDPOINT}/{repo}/resolve/{revision}/{file}</c>: the configuration file if the repository has one, and the first
    /// weight file of <paramref name="files"/> it has. A file the hub keeps with LFS is checked against its SHA-256 (the hub's
    /// ETag), one kept in git against its git blob hash, and both against their size. Offline, the cache alone answers.
    /// </summary>
    /// <param name="id">The model, e.g. <c>HubModelId.Parse("hf-hub:timm/resnet50.a1_in1k")</c>.</param>
    /// <param name="files">Which files to fetch; default <see cref="HubFileSet.Timm"/>.</param>
    /// <param name="cancellation">Stops the download, leaving at most a partial file that the next call resumes.</param>
    /// <returns>The snapshot: commit, folder, configuration and weight file paths.</returns>
    /// <exception cref="WeightDownloadException">
    /// The repository has none of the weight files, the model is not cached while offline, the bytes do not match, or the hub
    /// could not deliver them; the message names the URL, the path and what to do.
    /// </exception>
    public async Task<HubSnapshot> GetHubFilesAsync(HubModelId id, HubFileSet? files = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(id);
        files ??= HubFileSet.Timm;
        if (files.WeightFileNames.Count == 0) throw new ArgumentException("HubFileSet.WeightFileNames is empty; name at least one weight file.", nameof(files));
        foreach (string name in files.WeightFileNames.Prepend(files.ConfigFileName)) CheckRepositoryFileName(name);
        var layout = new HubCacheLayout(Options.HubCacheDirectory, id);
        if (Options.Offline) return await HubFromCacheAsync(id, files, layout, null, cancellation).ConfigureAwait(false);
        try
        {
            return await HubOnlineAsync(id, files, layout, cancellation).ConfigureAwait(false);
        }
        catch (WeightDownloadException e) when (e.Reason == WeightDownloadFailure.Http && e.StatusCode is null && layout.ResolveLocally(id.Revision) is not null)
        {
            // The hub is unreachable but the model was cached before: use it, as huggingface_hub does.
            return await HubFromCacheAsync(id, files, layout, e, cancellation).ConfigureAwait(false);
        }
    }

    /// <summary>The URL of a file of a hub repository at a revision: <c>{endpoint}/{repo}/resolve/{revision}/{file}</c>.</summary>
    /// <param name="id">The model.</param>
    /// <param name="fileName">The file in the repository, e.g. <c>model.safetensors</c>.</param>
    /// <param name="revision">The revision; default the id's.</param>
    public Uri HubFileUrl(HubModelId id, string fileName, string? revision = null)
    {
        ArgumentNullException.ThrowIfNull(id);
        ArgumentException.ThrowIfNullOrEmpty(fileName);
        string endpoint = Options.HubEndpoint.AbsoluteUri.TrimEnd('/');
        return new Uri($"{endpoint}/{id.Repository}/resolve/{Uri.EscapeDataString(revision ?? id.Revision)}/{Uri.EscapeDataString(fileName)}");
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_transfer.IsValueCreated) _transfer.Value.Dispose();
    }

    private static Uri EntryUrl(WeightsEntry entry) =>
        Uri.TryCreate(entry.Url, UriKind.Absolute, out var url)
            ? url
            : throw new WeightDownloadException(WeightDownloadFailure.InvalidRequest, $"Weights '{entry.Name}' have no absolute URL ('{entry.Url}').");

    // A file name of a hub repository: relative, forward slashes only, no '..' (it becomes a path under the snapshot folder).
    private static void CheckRepositoryFileName(string name)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Contains('\\') || name.StartsWith('/') || Path.IsPathRooted(name) ||
            name.Split('/').Any(part => part is "" or "." or ".."))
            throw new ArgumentException($"'{name}' is not a file name of a hub repository (a relative path such as 'model.safetensors').", nameof(name));
    }

    private async Task<HubSnapshot> HubOnlineAsync(HubModelId id, HubFileSet files, HubCacheLayout layout, CancellationToken cancellation)
    {
        var transfer = _transfer.Value;
        string? commit = HubCacheLayout.IsCommitHash(id.Revision) ? id.Revision : null;
        string? configPath = null;
        string? weightsPath = null;
        var absent = new List<string>();
        foreach (string name in files.WeightFileNames.Prepend(files.ConfigFileName))
        {
            // Once the revision resolved to a commit, ask for that commit, so every file comes from the same snapshot.
            Uri url = HubFileUrl(id, name, commit);
            string pointer = layout.SnapshotFile(commit ?? id.Revision, name);
            var metadata = await transfer.HeadHubFileAsync(url, pointer, cancellation).ConfigureAwait(false);
            if (metadata is null)
            {
                absent.Add(name);
                continue;
            }
            commit ??= metadata.Commit ?? throw new WeightDownloadException(WeightDownloadFailure.Http,
                $"{url} did not say which commit it serves (no X-Repo-Commit header), so the file cannot be placed in the hub cache. " +
                "Check HF_ENDPOINT: it must be the hub or a mirror that forwards its headers.", url, pointer);
            string path = await HubFileAsync(transfer, layout, url, commit, name, metadata, cancellation).ConfigureAwait(false);
            if (name == files.ConfigFileName) configPath = path;
            else
            {
                weightsPath = path;
                break;
            }
        }
        if (commit is not null)
            foreach (string name in absent) TryMarkMissing(layout, commit, name);
        if (weightsPath is null)
        {
            string tried = string.Join(", ", files.WeightFileNames.Select(name => HubFileUrl(id, name).ToString()));
            throw new WeightDownloadException(WeightDownloadFailure.FileNotInRepository,
                $"The hub repository '{id.Repository}' at '{id.Revision}' has none of the weight files {string.Join(", ", files.WeightFileNames)} " +
                $"(tried {tried}). Check the model name, or whether it is a timm or an OpenCLIP model.", HubFileUrl(id, files.WeightFileNames[0]),
                layout.RepositoryDirectory);
        }
        try
        {
            layout.WriteRef(id.Revision, commit!);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw FileLock.NotWritable(layout.RefFile(id.Revision), HubFileUrl(id, files.WeightFileNames[0]), e);
        }
        return new HubSnapshot(id, commit!, layout.SnapshotDirectory(commit!), configPath, weightsPath);
    }

    private async Task<string> HubFileAsync(HttpFileTransfer transfer, HubCacheLayout layout, Uri url, string commit, string name,
                                            HubFileMetadata metadata, CancellationToken cancellation)
    {
        var expected = ExpectedContent.FromHubEtag(metadata.Etag, metadata.Size);
        string pointer = layout.SnapshotFile(commit, name);
        string blob = layout.Blob(metadata.Etag);
        if (await CachedAsync(pointer, url, expected, cancellation).ConfigureAwait(false)) return pointer;
        try
        {
            using (await FileLock.AcquireAsync(layout.BlobLock(metadata.Etag), Options.LockTimeout, url, () => ReportWaiting(url, pointer), cancellation)
                       .ConfigureAwait(false))
            {
                if (!await CachedAsync(blob, url, expected, cancellation).ConfigureAwait(false))
                    await transfer.DownloadAsync(metadata.DownloadUrl, layout.PartialBlob(metadata.Etag), blob, expected, cancellation).ConfigureAwait(false);
                layout.LinkSnapshot(commit, name, metadata.Etag);
            }
        }
        catch (Exception e) when (e is IOException and not WeightDownloadException || e is UnauthorizedAccessException)
        {
            throw FileLock.NotWritable(pointer, url, e);
        }
        return pointer;
    }

    private async Task<HubSnapshot> HubFromCacheAsync(HubModelId id, HubFileSet files, HubCacheLayout layout, Exception? networkFailure,
                                                      CancellationToken cancellation)
    {
        string why = networkFailure is null ? "Offline (CNN_OFFLINE or HF_HUB_OFFLINE is set)" : $"The hub could not be reached ({networkFailure.Message})";
        string? commit = layout.ResolveLocally(id.Revision);
        Uri firstUrl = HubFileUrl(id, files.WeightFileNames[0]);
        if (commit is null || !Directory.Exists(layout.SnapshotDirectory(commit)))
        {
            string configUrl = HubFileUrl(id, files.ConfigFileName).ToString();
            throw new WeightDownloadException(WeightDownloadFailure.NotAvailableOffline,
                $"{why} and {id} is not in the hub cache {Options.HubCacheDirectory}: download {firstUrl} (and {configUrl}) on a machine " +
                $"with network, e.g. by loading the model there once, then copy its folder {layout.RepositoryDirectory}; or place the files in " +
                $"{layout.SnapshotDirectory("<commit>")}{Path.DirectorySeparatorChar} and write that commit hash to {layout.RefFile(id.Revision)}.",
                firstUrl, layout.RepositoryDirectory, networkFailure);
        }

        string? configPath = await SnapshotFileAsync(layout, id, commit, files.ConfigFileName, why, cancellation).ConfigureAwait(false);
        foreach (string name in files.WeightFileNames)
        {
            string? path = await SnapshotFileAsync(layout, id, commit, name, why, cancellation).ConfigureAwait(false);
            if (path is not null) return new HubSnapshot(id, commit, layout.SnapshotDirectory(commit), configPath, path);
            if (!File.Exists(layout.NoExistMarker(commit, name)))
                break; // not known to be absent: this is the file to fetch, not a later choice
        }
        string missing = files.WeightFileNames.FirstOrDefault(name => !File.Exists(layout.NoExistMarker(commit, name))) ?? files.WeightFileNames[0];
        Uri url = HubFileUrl(id, missing, commit);
        throw new WeightDownloadException(WeightDownloadFailure.NotAvailableOffline,
            $"{why} and {id}'s {missing} is not in the hub cache: download {url} on a machine with network and place it at " +
            $"{layout.SnapshotFile(commit, missing)} (the hub's ETag of the file is its SHA-256).", url, layout.SnapshotFile(commit, missing), networkFailure);
    }

    // A snapshot file checked against the hash its blob's name gives (or its verification note); null when absent.
    private async Task<string?> SnapshotFileAsync(HubCacheLayout layout, HubModelId id, string commit, string name, string why, CancellationToken cancellation)
    {
        string path = layout.SnapshotFile(commit, name);
        if (!File.Exists(path)) return null;
        var expected = HubCacheLayout.LinkedEtag(path) is { } etag ? ExpectedContent.FromHubEtag(etag, null) : null;
        var outcome = await _verified.CheckAsync(path, expected, cancellation).ConfigureAwait(false);
        if (outcome.Ok) return path;
        Uri url = HubFileUrl(id, name, commit);
        throw new WeightDownloadException(WeightDownloadFailure.NotAvailableOffline,
            $"{why} and the cached {path} is damaged ({outcome.Problem}); it was not used. Download {url} again on a machine with network " +
            "and replace it.", url, path)
        {
            ExpectedHash = expected?.Hash,
            ActualHash = outcome.Sha256,
        };
    }

    // True when the file is cached and meets the expectation; a damaged copy is reported as such and left to be replaced.
    private async Task<bool> CachedAsync(string path, Uri url, ExpectedContent expected, CancellationToken cancellation) =>
        (await CheckCachedAsync(path, url, expected, cancellation).ConfigureAwait(false))?.Ok == true;

    // The check of a cached file, or null when there is none.
    private async Task<VerifiedFiles.Outcome?> CheckCachedAsync(string path, Uri url, ExpectedContent expected, CancellationToken cancellation)
    {
        if (!File.Exists(path)) return null;
        try
        {
            return await _verified.CheckAsync(path, expected, cancellation).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new WeightDownloadException(WeightDownloadFailure.CacheNotWritable,
                $"The cached weight file {path} (of {url}) cannot be read: {e.Message} Fix its permissions or delete it.", url, path, e);
        }
    }

    private static void TryMarkMissing(HubCacheLayout layout, string commit, string name)
    {
        try
        {
            layout.MarkMissing(commit, name);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Only an offline hint; without it, offline use asks for the file instead of skipping it.
        }
    }

    private void ReportWaiting(Uri url, string path) =>
        Options.Progress?.Report(new DownloadProgress(DownloadStage.WaitingForOtherProcess, url, Path.GetFileName(path), 0, null, 0, TimeSpan.Zero));
}
