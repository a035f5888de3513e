using Cnn.Tests.Shared;
using Cnn.Backbones.Weights.Download;

namespace Cnn.Backbones.Tests.Download;

/// <summary>Another process on the same cache (the file lock), and the process proxy settings, with a real second .NET process.</summary>
[TestClass]
public sealed class WeightStoreProcessTests
{
    private static readonly byte[] Content = DownloadFixture.RandomBytes(320_000, seed: 7);
    private static readonly string Hash = DownloadFixture.Sha256(Content);
    private static readonly string FileName = $"racenet-{Hash[..10]}.pth";

    [TestMethod]
    public async Task TwoProcessesRacingForOneFile_TheSecondWaitsAndUsesTheFirstsFile()
    {
        using var fixture = new DownloadFixture();
        using var server = new LoopbackServer(request =>
            request.Path == "/models/" + FileName ? ServerResponse.File(Content, request, chunkDelay: TimeSpan.FromMilliseconds(60)) : ServerResponse.NotFound());
        Uri url = server.Url("models/" + FileName);

        using var other = DownloadProbe.Start(url, Hash[..10], fixture.Environment);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (server.Count("GET", FileName) == 0 && !other.HasExited && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.AreEqual(1, server.Count("GET", FileName), "the other process is downloading: " + (other.HasExited ? DownloadProbe.Finish(other).Output : ""));

        using var store = fixture.Store();
        string path = await store.GetFileAsync(url, Hash[..10]);

        var (exitCode, output) = DownloadProbe.Finish(other);
        Assert.AreEqual(0, exitCode, output);
        StringAssert.Contains(output, "PATH=" + path);
        Assert.IsTrue(fixture.Reports.Any(r => r.Stage == DownloadStage.WaitingForOtherProcess), "this process waited for the lock");
        Assert.AreEqual(1, server.Count("GET", FileName), "one download for both");
        CollectionAssert.AreEqual(Content, await File.ReadAllBytesAsync(path));
    }

    [TestMethod]
    public void HttpProxyOfTheEnvironment_CarriesTheRequest_NoProxyBypassesIt()
    {
        using var fixture = new DownloadFixture();
        using var proxy = new LoopbackServer(request =>
            request.Target == $"http://weights.invalid/models/{FileName}" ? ServerResponse.File(Content, request) : new ServerResponse { Status = 403 });
        var url = new Uri($"http://weights.invalid/models/{FileName}");
        var environment = new Dictionary<string, string?>(fixture.Environment) { ["HTTP_PROXY"] = proxy.BaseUrl.ToString() };

        var (exitCode, output) = DownloadProbe.Finish(DownloadProbe.Start(url, Hash[..10], environment, insecure: true));

        Assert.AreEqual(0, exitCode, output);
        Assert.AreEqual(1, proxy.Requests.Count(r => r.Method == "GET" && r.Target == url.ToString()), "the proxy got the absolute URL");
        CollectionAssert.AreEqual(Content, File.ReadAllBytes(Path.Combine(fixture.Checkpoints, FileName)));

        // An https URL goes through HTTPS_PROXY as a CONNECT tunnel (refused here, so the download fails and caches nothing)...
        var secure = new Uri($"https://weights.invalid/models/other-{Hash[..10]}.pth");
        environment["HTTPS_PROXY"] = proxy.BaseUrl.ToString();
        (exitCode, output) = DownloadProbe.Finish(DownloadProbe.Start(secure, Hash[..10], environment));
        Assert.AreEqual(3, exitCode, output);
        StringAssert.Contains(output, secure.ToString());
        Assert.AreEqual(1, proxy.Requests.Count(r => r.Method == "CONNECT" && r.Target == "weights.invalid:443"));

        // ... unless NO_PROXY names the host: then it is asked for directly (and .invalid does not resolve).
        environment["NO_PROXY"] = "weights.invalid";
        (exitCode, output) = DownloadProbe.Finish(DownloadProbe.Start(secure, Hash[..10], environment));
        Assert.AreEqual(3, exitCode, output);
        Assert.AreEqual(1, proxy.Requests.Count(r => r.Method == "CONNECT"), "the proxy was bypassed");
        Assert.IsFalse(File.Exists(Path.Combine(fixture.Checkpoints, $"other-{Hash[..10]}.pth")));
    }
}
