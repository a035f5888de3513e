using System.Diagnostics;

namespace Cnn.Tests.Shared;

/// <summary>
/// A Hugging Face hub on loopback, answering as huggingface.co does: <c>/{repo}/resolve/{revision}/{file}</c> serves a file kept
/// in git directly (ETag: its git blob hash) and redirects an LFS file to a CDN on another host name (X-Linked-Etag: its
/// SHA-256, X-Linked-Size), both with X-Repo-Commit; a missing file is a 404 with X-Error-Code EntryNotFound.
/// </summary>
internal sealed class FakeHub : IDisposable
{
    public const string Commit = "3f2c6a1e9b8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b";

    public FakeHub(string repository, IReadOnlyDictionary<string, byte[]> files, Func<string, byte[], byte[]>? cdnBytes = null)
    {
        Repository = repository;
        Files = files;
        Server = new LoopbackServer(request =>
        {
            string prefix = $"/{Repository}/resolve/";
            if (request.Path.StartsWith("/cdn/", StringComparison.Ordinal))
            {
                string sha = request.Path["/cdn/".Length..];
                var match = Files.Values.FirstOrDefault(bytes => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)) == sha);
                return match is null ? ServerResponse.NotFound() : ServerResponse.File(cdnBytes?.Invoke(sha, match) ?? match, request);
            }
            if (!request.Path.StartsWith(prefix, StringComparison.Ordinal)) return ServerResponse.NotFound("RepoNotFound");
            string[] rest = Uri.UnescapeDataString(request.Path[prefix.Length..]).Split('/', 2);
            if (rest[0] is not ("main" or Commit)) return ServerResponse.NotFound("RevisionNotFound");
            if (!Files.TryGetValue(rest[1], out var content)) return ServerResponse.NotFound("EntryNotFound");
            if (IsLfs(rest[1]))
            {
                string sha256 = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(content));
                var redirect = ServerResponse.Redirect($"http://localhost:{Server!.Port}/cdn/{sha256}");
                redirect.Headers["X-Linked-Etag"] = $"\"{sha256}\"";
                redirect.Headers["X-Linked-Size"] = content.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
                redirect.Headers["X-Repo-Commit"] = Commit;
                redirect.Headers["ETag"] = "\"0123456789abcdef0123456789abcdef01234567\""; // the LFS pointer's, not the file's
                return redirect;
            }
            var direct = ServerResponse.File(content, request);
            direct.Headers["ETag"] = $"\"{GitBlobHash(content)}\"";
            direct.Headers["X-Repo-Commit"] = Commit;
            return direct;
        });
    }

    public string Repository { get; }

    public IReadOnlyDictionary<string, byte[]> Files { get; }

    public LoopbackServer Server { get; }

    public static bool IsLfs(string name) => !name.EndsWith(".json", StringComparison.Ordinal);

    /// <summary>The git blob hash of some bytes, as git itself computes it (<c>git hash-object</c>).</summary>
    public static string GitBlobHash(byte[] content)
    {
        var info = new ProcessStartInfo("git", "hash-object --stdin") { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        using var git = Process.Start(info)!;
        git.StandardInput.BaseStream.Write(content);
        git.StandardInput.Close();
        string hash = git.StandardOutput.ReadToEnd().Trim();
        git.WaitForExit();
        Assert.AreEqual(0, git.ExitCode, "git hash-object failed");
        return hash;
    }

    public void Dispose() => Server.Dispose();

    /// <summary>Store options that download from this hub into <paramref name="cacheRoot"/>, without a progress bar.</summary>
    public Cnn.Backbones.Weights.Download.WeightStoreOptions StoreOptions(string cacheRoot)
    {
        var options = new Cnn.Backbones.Weights.Download.WeightStoreOptions().UseCacheRoot(cacheRoot);
        options.Progress = null;
        options.HubEndpoint = Server.BaseUrl;
        return options;
    }

    /// <summary>
    /// Makes every <c>new WeightStore()</c> of this test (the library's and the CLI's) download from this hub into
    /// <paramref name="cacheRoot"/> until the returned scope is disposed.
    /// </summary>
    public IDisposable UseForTests(string cacheRoot) => new TestStoreScope(StoreOptions(cacheRoot));

    private sealed class TestStoreScope : IDisposable
    {
        public TestStoreScope(Cnn.Backbones.Weights.Download.WeightStoreOptions options) =>
            Cnn.Backbones.Weights.Download.WeightStore.OptionsForTests.Value = options;

        public void Dispose() => Cnn.Backbones.Weights.Download.WeightStore.OptionsForTests.Value = null;
    }
}
