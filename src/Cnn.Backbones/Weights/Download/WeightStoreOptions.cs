namespace Cnn.Backbones.Weights.Download;

/// <summary>
/// Where <see cref="WeightStore"/> caches weight files, which servers it asks, and how it downloads. The defaults come from
/// the environment variables PyTorch, the Hugging Face hub and this library read, so a machine that already ran torchvision or
/// timm finds its files where those put them:
/// <list type="bullet">
/// <item><c>CNN_HOME</c>: one root for everything (<c>$CNN_HOME/checkpoints</c>, <c>$CNN_HOME/hub</c>, <c>$CNN_HOME/verified</c>); overrides the two below.</item>
/// <item><c>TORCH_HOME</c> (default <c>$XDG_CACHE_HOME/torch</c>, else <c>~/.cache/torch</c>): torchvision files in <c>$TORCH_HOME/hub/checkpoints</c>, as <c>torch.hub</c> keeps them.</item>
/// <item><c>HF_HUB_CACHE</c>, else <c>$HF_HOME/hub</c> (default <c>~/.cache/huggingface/hub</c>): hub files in the hub's <c>models--org--name</c> layout.</item>
/// <item><c>CNN_OFFLINE=1</c> or <c>HF_HUB_OFFLINE=1</c>: never touch the network (<see cref="Offline"/>).</item>
/// <item><c>HF_ENDPOINT</c>: the hub's address (default <c>https://huggingface.co</c>).</item>
/// <item><c>CNN_WEIGHTS_MIRROR</c>: a base URL that replaces <c>https://download.pytorch.org/models/</c>.</item>
/// </list>
/// Proxies: <c>HTTPS_PROXY</c>, <c>HTTP_PROXY</c>, <c>ALL_PROXY</c> and <c>NO_PROXY</c> of the process are honoured by .NET's default proxy.
/// </summary>
public sealed class WeightStoreOptions
{
    /// <summary>Where torchvision publishes its weight files; <see cref="TorchvisionMirror"/> replaces this prefix.</summary>
    public static readonly Uri TorchvisionBaseUrl = new("https://download.pytorch.org/models/");

    /// <summary>The Hugging Face hub's address unless <c>HF_ENDPOINT</c> names another.</summary>
    public static readonly Uri DefaultHubEndpoint = new("https://huggingface.co");

    /// <summary>Options from the process environment (see the class summary).</summary>
    /// <exception cref="ArgumentException">An environment variable holds a value that is not a usable URL.</exception>
    public WeightStoreOptions()
        : this(Environment.GetEnvironmentVariable)
    {
    }

    private WeightStoreOptions(Func<string, string?> environment)
    {
        string? Get(string name) => environment(name) is { Length: > 0 } value ? value.Trim() : null;

        string home = Get("HOME") ?? Get("USERPROFILE") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        string Expand(string path) =>
            path == "~" ? home : path.StartsWith("~/", StringComparison.Ordinal) ? Path.Combine(home, path[2..]) : path;
        string cacheHome = Expand(Get("XDG_CACHE_HOME") ?? Path.Combine(home, ".cache"));

        if (Get("CNN_HOME") is { } cnnHome)
        {
            UseCacheRoot(Expand(cnnHome));
        }
        else
        {
            string torchHome = Expand(Get("TORCH_HOME") ?? Path.Combine(cacheHome, "torch"));
            TorchCheckpointsDirectory = Path.Combine(torchHome, "hub", "checkpoints");
            string hfHome = Expand(Get("HF_HOME") ?? Path.Combine(cacheHome, "huggingface"));
            HubCacheDirectory = Expand(Get("HF_HUB_CACHE") ?? Get("HUGGINGFACE_HUB_CACHE") ?? Path.Combine(hfHome, "hub"));
            VerifiedMemoDirectory = Path.Combine(cacheHome, "cnn", "verified");
        }

        Offline = IsTrue(Get("CNN_OFFLINE")) || IsTrue(Get("HF_HUB_OFFLINE"));
        HubEndpoint = Get("HF_ENDPOINT") is { } endpoint ? AbsoluteUrl("HF_ENDPOINT", endpoint) : DefaultHubEndpoint;
        TorchvisionMirror = Get("CNN_WEIGHTS_MIRROR") is { } mirror ? AbsoluteUrl("CNN_WEIGHTS_MIRROR", mirror) : null;
        Progress = new ConsoleDownloadProgress();
    }

    /// <summary>
    /// Options from an environment given as a lookup (a variable's name to its value, or null where unset), for hosts and tests
    /// that must not read or change the process environment. Variables the lookup does not know take no effect; <c>HOME</c>
    /// (else <c>USERPROFILE</c>) names the home folder, else the user profile folder of the process.
    /// </summary>
    /// <param name="environment">The lookup; null reads the process environment.</param>
    /// <exception cref="ArgumentException">A variable holds a value that is not a usable URL.</exception>
    public static WeightStoreOptions FromEnvironment(Func<string, string?>? environment = null) =>
        new(environment ?? Environment.GetEnvironmentVariable);

    /// <summary>Folder of torchvision files, named as their URL names them (<c>$TORCH_HOME/hub/checkpoints</c>).</summary>
    public string TorchCheckpointsDirectory { get; set; } = "";

    /// <summary>Root of the Hugging Face hub cache, holding one <c>models--org--name</c> folder per repository.</summary>
    public string HubCacheDirectory { get; set; } = "";

    /// <summary>
    /// Folder of this library's notes on files whose hash it has verified (size, modification time and SHA-256 of each), so a
    /// file is hashed once, not at every use. Kept apart from PyTorch's and the hub's folders, which it does not clutter.
    /// </summary>
    public string VerifiedMemoDirectory { get; set; } = "";

    /// <summary>Never use the network: files must be in the cache already, else the error says what to fetch and where to put it.</summary>
    public bool Offline { get; set; }

    /// <summary>The Hugging Face hub's address (<c>HF_ENDPOINT</c>); files come from <c>{endpoint}/{repo}/resolve/{revision}/{file}</c>.</summary>
    public Uri HubEndpoint { get; set; }

    /// <summary>A base URL that replaces <see cref="TorchvisionBaseUrl"/> in every torchvision URL (<c>CNN_WEIGHTS_MIRROR</c>), or null.</summary>
    public Uri? TorchvisionMirror { get; set; }

    /// <summary>
    /// Allow plain <c>http://</c> to hosts other than this machine's loopback. Off by default: weights are code-like input and a
    /// plain connection can be tampered with (the hash check still applies either way).
    /// </summary>
    public bool AllowInsecureHttp { get; set; }

    /// <summary>Receives progress of each download; by default a <see cref="ConsoleDownloadProgress"/> on standard error. Null reports nothing.</summary>
    public IProgress<DownloadProgress>? Progress { get; set; }

    /// <summary>
    /// The HTTP handler to send requests through (tests, custom TLS or proxy settings); null uses a <see cref="SocketsHttpHandler"/>
    /// with the default proxy. The store follows redirects itself, so the handler should not.
    /// </summary>
    public HttpMessageHandler? HttpHandler { get; set; }

    /// <summary>Retries of a transient failure (connection lost, time-out, HTTP 408, 429 or 5xx) per file; 0 disables them. Default 4.</summary>
    public int MaxRetries { get; set; } = 4;

    /// <summary>Delay before the first retry; each further one doubles it (with jitter). Default 1 s.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a connection may send nothing before the attempt counts as failed (and is retried). Default 60 s.</summary>
    public TimeSpan StallTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How long to wait for another process that downloads the same file before giving up. Default 2 h.</summary>
    public TimeSpan LockTimeout { get; set; } = TimeSpan.FromHours(2);

    /// <summary>
    /// Puts every cache under one folder, as <c>CNN_HOME</c> does: <c>{root}/checkpoints</c> for torchvision files,
    /// <c>{root}/hub</c> for hub files and <c>{root}/verified</c> for the verification notes.
    /// </summary>
    /// <param name="root">The folder (created when first needed).</param>
    /// <returns>These options.</returns>
    public WeightStoreOptions UseCacheRoot(string root)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        string full = Path.GetFullPath(root);
        TorchCheckpointsDirectory = Path.Combine(full, "checkpoints");
        HubCacheDirectory = Path.Combine(full, "hub");
        VerifiedMemoDirectory = Path.Combine(full, "verified");
        return this;
    }

    /// <summary>Checks the options before any work; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(TorchCheckpointsDirectory)) throw new ArgumentException("WeightStoreOptions.TorchCheckpointsDirectory is empty.");
        if (string.IsNullOrWhiteSpace(HubCacheDirectory)) throw new ArgumentException("WeightStoreOptions.HubCacheDirectory is empty.");
        if (string.IsNullOrWhiteSpace(VerifiedMemoDirectory)) throw new ArgumentException("WeightStoreOptions.VerifiedMemoDirectory is empty.");
        if (!HubEndpoint.IsAbsoluteUri) throw new ArgumentException($"WeightStoreOptions.HubEndpoint '{HubEndpoint}' is not an absolute URL.");
        if (TorchvisionMirror is { IsAbsoluteUri: false }) throw new ArgumentException($"WeightStoreOptions.TorchvisionMirror '{TorchvisionMirror}' is not an absolute URL.");
        if (MaxRetries < 0) throw new ArgumentException($"WeightStoreOptions.MaxRetries is {MaxRetries}; use 0 or more.");
        if (RetryDelay < TimeSpan.Zero) throw new ArgumentException($"WeightStoreOptions.RetryDelay is {RetryDelay}; use zero or more.");
        if (StallTimeout <= TimeSpan.Zero) throw new ArgumentException($"WeightStoreOptions.StallTimeout is {StallTimeout}; use a positive time.");
        if (LockTimeout < TimeSpan.Zero) throw new ArgumentException($"WeightStoreOptions.LockTimeout is {LockTimeout}; use zero or more.");
    }

    // huggingface_hub's reading of boolean variables: 1, ON, YES or TRUE in any case.
    private static bool IsTrue(string? value) =>
        value is not null && (value == "1" || value.Equals("on", StringComparison.OrdinalIgnoreCase) ||
                              value.Equals("yes", StringComparison.OrdinalIgnoreCase) || value.Equals("true", StringComparison.OrdinalIgnoreCase));

    private static Uri AbsoluteUrl(string variable, string value)
    {
        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
            throw new ArgumentException($"The environment variable {variable}='{value}' is not an http(s) URL; set it to one such as 'https://host/path/' or unset it.");
        return uri;
    }
}
