using System.Collections.Concurrent;
using System.Security.Cryptography;
using Cnn.Backbones.Weights.Download;
using Cnn.Tests.Shared;

namespace Cnn.Backbones.Tests.Download;

/// <summary>A temporary home for one download test: environment, cache folders and a progress recorder.</summary>
internal sealed class DownloadFixture : IDisposable
{
    private readonly TempDirectory _dir = new();

    public DownloadFixture()
    {
        Environment = new Dictionary<string, string?> { ["HOME"] = _dir.File("home"), ["TORCH_HOME"] = _dir.File("torch"), ["HF_HOME"] = _dir.File("hf") };
    }

    public string Root => _dir.Path;

    /// <summary>The environment the store reads (never the process's).</summary>
    public Dictionary<string, string?> Environment { get; }

    public string Checkpoints => Path.Combine(_dir.File("torch"), "hub", "checkpoints");

    public string HubCache => Path.Combine(_dir.File("hf"), "hub");

    public ConcurrentQueue<DownloadProgress> Reports { get; } = new();

    /// <summary>Options from <see cref="Environment"/>: no retries unless asked, quick backoff, progress recorded.</summary>
    public WeightStoreOptions Options(int retries = 0)
    {
        var options = WeightStoreOptions.FromEnvironment(name => Environment.GetValueOrDefault(name));
        options.MaxRetries = retries;
        options.RetryDelay = TimeSpan.FromMilliseconds(10);
        options.Progress = new Recorder(Reports);
        return options;
    }

    public WeightStore Store(int retries = 0, bool offline = false)
    {
        var options = Options(retries);
        if (offline) options.Offline = true;
        return new WeightStore(options);
    }

    public void Dispose() => _dir.Dispose();

    public static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>Files left in a folder (none if it does not exist), by name.</summary>
    public static string[] FilesIn(string folder) =>
        Directory.Exists(folder) ? Directory.GetFiles(folder).Select(file => Path.GetFileName(file)).Order().ToArray() : [];

    private sealed class Recorder(ConcurrentQueue<DownloadProgress> reports) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => reports.Enqueue(value);
    }
}

/// <summary>An HTTP handler that fails any request: proves a path never touches the network.</summary>
internal sealed class NoNetworkHandler : HttpMessageHandler
{
    public int Calls;

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref Calls);
        throw new InvalidOperationException($"The network was used: {request.Method} {request.RequestUri}");
    }
}
