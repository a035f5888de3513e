using Cnn.Tests.Shared;
using Cnn.Backbones.Models;
using Cnn.Backbones.Weights.Catalog;
using Cnn.Backbones.Weights.Download;

namespace Cnn.Backbones.Tests.Download;

/// <summary>Torchvision-style files (URL + SHA-256 prefix) against a loopback server the tests start.</summary>
[TestClass]
public sealed class WeightStoreFileTests
{
    private static readonly byte[] Content = DownloadFixture.RandomBytes(300_000, seed: 29);
    private static readonly string Hash = DownloadFixture.Sha256(Content);
    private static readonly string FileName = $"tinynet-{Hash[..8]}.pth";

    private static LoopbackServer ServeFile(bool honourRange = true, Func<int, int?>? cutAfterForGet = null, TimeSpan chunkDelay = default)
    {
        int gets = 0;
        return new LoopbackServer(request =>
        {
            if (request.Path != "/models/" + FileName) return ServerResponse.NotFound();
            int? cut = request.Method == "GET" ? cutAfterForGet?.Invoke(Interlocked.Increment(ref gets)) : null;
            return ServerResponse.File(Content, request, honourRange, cut, chunkDelay);
        });
    }

    [TestMethod]
    public async Task Downloads_VerifiesAndCachesUnderTorchCheckpoints_ThenServesFromCache()
    {
        using var fixture = new DownloadFixture();
        using var server = ServeFile();
        using var store = fixture.Store();

        string path = await store.GetFileAsync(server.Url("models/" + FileName), Hash[..8]);

        Assert.AreEqual(Path.Combine(fixture.Checkpoints, FileName), path);
        CollectionAssert.AreEqual(Content, await File.ReadAllBytesAsync(path));
        CollectionAssert.AreEqual(new[] { FileName, FileName + ".lock" }, DownloadFixture.FilesIn(fixture.Checkpoints), "no .partial left");
        Assert.AreEqual(1, server.Count("GET", FileName));
        Assert.IsTrue(fixture.Reports.Any(r => r.Stage == DownloadStage.Completed && r.BytesReceived == Content.Length && r.TotalBytes == Content.Length));
        Assert.IsTrue(store.IsCached(server.Url("models/" + FileName)));

        // Later uses: from the cache, without a request, and (a fresh store) without hashing again: the verification note answers.
        using var again = fixture.Store();
        Assert.AreEqual(path, await again.GetFileAsync(server.Url("models/" + FileName), Hash[..16]));
        Assert.AreEqual(1, server.Requests.Count);
        Assert.AreEqual(1, Directory.GetFiles(Path.Combine(fixture.Root, "home", ".cache", "cnn", "verified")).Length);
    }

    [TestMethod]
    public async Task BytesNotMatchingTheHash_AreRefused_NothingCached_MessageNamesBothHashes()
    {
        using var fixture = new DownloadFixture();
        string wrong = "0123abcd" + Hash[8..];
        string claimed = $"tinynet-{wrong[..8]}.pth";
        using var server = new LoopbackServer(request => ServerResponse.File(Content, request));
        using var store = fixture.Store();
        Uri url = server.Url("models/" + claimed);

        var error = await Assert.ThrowsExactlyAsync<WeightDownloadException>(() => store.GetFileAsync(url, wrong[..8]));

        Assert.AreEqual(WeightDownloadFailure.HashMismatch, error.Reason);
        StringAssert.Contains(error.Message, wrong[..8]);
        StringAssert.Contains(error.Message, Hash);
        StringAssert.Contains(error.Message, url.ToString());
        StringAssert.Contains(error.Message, Path.Combine(fixture.Checkpoints, claimed));
        Assert.AreEqual(Hash, error.ActualHash);
        CollectionAssert.AreEqual(new[] { claimed + ".lock" }, DownloadFixture.FilesIn(fixture.Checkpoints), "neither the file nor a .partial is kept");
    }

    [TestMethod]
    [DataRow(null)]
    [DataRow("")]
    [DataRow("1234567")]
    [DataRow("1234567g")]
    public async Task MissingOrShortHashPrefix_IsAnError_BeforeAnyRequest(string? prefix)
    {
        using var fixture = new DownloadFixture();
        var options = fixture.Options();
        var handler = new NoNetworkHandler();
        options.HttpHandler = handler;
        using var store = new WeightStore(options);

        var error = await Assert.ThrowsExactlyAsync<WeightDownloadException>(
            () => store.GetFileAsync(new Uri(WeightStoreOptions.TorchvisionBaseUrl, "resnet18-f37072fd.pth"), prefix!));

        Assert.AreEqual(WeightDownloadFailure.InvalidRequest, error.Reason);
        StringAssert.Contains(error.Message, "8 to 64 hex digits");
        Assert.AreEqual(0, handler.Calls);
    }

    [TestMethod]
    public async Task ConnectionCutMidFile_NothingCached_NextCallResumesWithRange_ByteIdentical()
    {
        using var fixture = new DownloadFixture();
        using var server = ServeFile(cutAfterForGet: get => get == 1 ? 120_000 : null);
        using var store = fixture.Store(retries: 0);
        Uri url = server.Url("models/" + FileName);
        string path = Path.Combine(fixture.Checkpoints, FileName);

        var error = await Assert.ThrowsExactlyAsync<WeightDownloadException>(() => store.GetFileAsync(url, Hash[..8]));
        Assert.AreEqual(WeightDownloadFailure.Http, error.Reason);
        StringAssert.Contains(error.Message, url.ToString());
        Assert.IsFalse(File.Exists(path), "nothing cached");
        long partial = new FileInfo(path + ".partial").Length;
        Assert.IsTrue(partial is > 0 and <= 120_000, $"partial {partial}");

        Assert.AreEqual(path, await store.GetFileAsync(url, Hash[..8]));

        var resumed = server.Requests.Where(r => r.Method == "GET").Last();
        Assert.AreEqual(partial, resumed.RangeStart, "the second call asks for the rest only");
        CollectionAssert.AreEqual(Content, await File.ReadAllBytesAsync(path));
        Assert.IsFalse(File.Exists(path + ".partial"));
    }

    [TestMethod]
    public async Task ConnectionCut_IsRetriedWithinOneCall_WithRange()
    {
        using var fixture = new DownloadFixture();
        using var server = ServeFile(cutAfterForGet: get => get <= 2 ? 50_000 * get : null);
        using var store = fixture.Store(retries: 3);

        string path = await store.GetFileAsync(server.Url("models/" + FileName), Hash[..8]);

        CollectionAssert.AreEqual(Content, await File.ReadAllBytesAsync(path));
        var gets = server.Requests.Where(r => r.Method == "GET").ToList();
        Assert.AreEqual(3, gets.Count);
        Assert.IsNull(gets[0].RangeStart);
        Assert.IsTrue(gets[1].RangeStart > 0 && gets[2].RangeStart > gets[1].RangeStart, "each retry resumes where the last stopped");
    }

    [TestMethod]
    public async Task ServerIgnoringRange_RestartsFromZero_ByteIdentical()
    {
        using var fixture = new DownloadFixture();
        using var server = ServeFile(honourRange: false, cutAfterForGet: get => get == 1 ? 100_000 : null);
        using var store = fixture.Store(retries: 0);
        Uri url = server.Url("models/" + FileName);
        await Assert.ThrowsExactlyAsync<WeightDownloadException>(() => store.GetFileAsync(url, Hash[..8]));
        Assert.IsTrue(File.Exists(Path.Combine(fixture.Checkpoints, FileName + ".partial")));

        string path = await store.GetFileAsync(url, Hash[..8]);

        Assert.IsNotNull(server.Requests.Where(r => r.Method == "GET").Last().RangeStart, "a Range was asked for");
        CollectionAssert.AreEqual(Content, await File.ReadAllBytesAsync(path), "the whole answer replaced the partial file");
    }

    [TestMethod]
    public async Task TransientServerError_IsRetried_PermanentOneIsNot()
    {
        using var fixture = new DownloadFixture();
        int gets = 0;
        using var server = new LoopbackServer(request =>
            request.Path.EndsWith(FileName, StringComparison.Ordinal)
                ? Interlocked.Increment(ref gets) <= 2 ? new ServerResponse { Status = 503 } : ServerResponse.File(Content, request)
                : ServerResponse.NotFound());
        using var store = fixture.Store(retries: 3);

        CollectionAssert.AreEqual(Content, await File.ReadAllBytesAsync(await store.GetFileAsync(server.Url("models/" + FileName), Hash[..8])));
        Assert.AreEqual(3, gets);

        var error = await Assert.ThrowsExactlyAsync<WeightDownloadException>(() => store.GetFileAsync(server.Url("models/absent-12345678.pth"), "12345678"));
        Assert.AreEqual(404, error.StatusCode);
        StringAssert.Contains(error.Message, server.Url("models/absent-12345678.pth").ToString());
        Assert.AreEqual(1, server.Count("GET", "absent-12345678.pth"), "a 404 is not retried");
    }

    [TestMethod]
    public async Task FollowsRedirects_AlsoToAnotherHost()
    {
        using var fixture = new DownloadFixture();
        using var server = new LoopbackServer(request => request.Path switch
        {
            "/models/" + "moved.pth" => ServerResponse.Redirect("/cdn/" + FileName, 301),
            // 127.0.0.1 → localhost: another host name, as the hub sends to its CDN.
            _ when request.Path == "/cdn/" + FileName => ServerResponse.Redirect($"http://localhost:{request.Header("Host")!.Split(':')[1]}/final/{FileName}"),
            _ when request.Path == "/final/" + FileName => ServerResponse.File(Content, request),
            _ => ServerResponse.NotFound(),
        });
        using var store = fixture.Store();

        string path = await store.GetFileAsync(server.Url("models/moved.pth"), Hash[..8]);

        Assert.AreEqual(Path.Combine(fixture.Checkpoints, "moved.pth"), path, "the cache name is the requested URL's");
        CollectionAssert.AreEqual(Content, await File.ReadAllBytesAsync(path));
        Assert.AreEqual("localhost", server.Requests.Last().Header("Host")!.Split(':')[0]);
    }

    [TestMethod]
    public async Task PlainHttpToAnotherHost_IsRefused_WithoutConnecting_AlsoAsARedirect()
    {
        using var fixture = new DownloadFixture();
        var options = fixture.Options();
        var handler = new NoNetworkHandler();
        options.HttpHandler = handler;
        using var store = new WeightStore(options);
        var url = new Uri("http://weights.example.com/models/" + FileName);

        var error = await Assert.ThrowsExactlyAsync<WeightDownloadException>(() => store.GetFileAsync(url, Hash[..8]));

        Assert.AreEqual(WeightDownloadFailure.InsecureUrl, error.Reason);
        StringAssert.Contains(error.Message, url.ToString());
        StringAssert.Contains(error.Message, "AllowInsecureHttp");
        Assert.AreEqual(0, handler.Calls);
        Assert.AreEqual(0, DownloadFixture.FilesIn(fixture.Checkpoints).Length);

        // A loopback server redirecting to plain http elsewhere is refused at that hop.
        using var server = new LoopbackServer(_ => ServerResponse.Redirect(url.ToString()));
        using var loopbackStore = fixture.Store();
        var redirected = await Assert.ThrowsExactlyAsync<WeightDownloadException>(() => loopbackStore.GetFileAsync(server.Url("models/" + FileName), Hash[..8]));
        Assert.AreEqual(WeightDownloadFailure.InsecureUrl, redirected.Reason);
    }

    [TestMethod]
    public async Task Offline_WithoutTheFile_OneMessageWithUrlPathAndHash_NoNetwork()
    {
        using var fixture = new DownloadFixture();
        fixture.Environment["CNN_OFFLINE"] = "1";
        var options = fixture.Options();
        var handler = new NoNetworkHandler();
        options.HttpHandler = handler;
        Assert.IsTrue(options.Offline);
        using var store = new WeightStore(options);
        var url = new Uri(WeightStoreOptions.TorchvisionBaseUrl, FileName);

        var error = await Assert.ThrowsExactlyAsync<WeightDownloadException>(() => store.GetFileAsync(url, Hash[..8]));

        Assert.AreEqual(WeightDownloadFailure.NotAvailableOffline, error.Reason);
        StringAssert.Contains(error.Message, url.ToString());
        StringAssert.Contains(error.Message, Path.Combine(fixture.Checkpoints, FileName));
        StringAssert.Contains(error.Message, Hash[..8]);
        Assert.AreEqual(0, handler.Calls);
        Assert.AreEqual(0, DownloadFixture.FilesIn(fixture.Checkpoints).Length, "offline writes nothing");
    }

    [TestMethod]
    public async Task Offline_WithTheFileCached_UsesIt_NoNetwork()
    {
        using var fixture = new DownloadFixture();
        using var server = ServeFile();
        Uri url = server.Url("models/" + FileName);
        string path;
        using (var online = fixture.Store()) path = await online.GetFileAsync(url, Hash[..8]);

        fixture.Environment["HF_HUB_OFFLINE"] = "true";
        var options = fixture.Options();
        options.HttpHandler = new NoNetworkHandler();
        using var offline = new WeightStore(options);

        Assert.AreEqual(path, await offline.GetFileAsync(url, Hash[..8]));
        Assert.AreEqual(1, server.Requests.Count);
    }

    [TestMethod]
    public async Task CachedFileTruncatedByOneByte_IsDownloadedAgainOnline_RefusedOffline()
    {
        using var fixture = new DownloadFixture();
        using var server = ServeFile();
        Uri url = server.Url("models/" + FileName);
        using var store = fixture.Store();
        string path = await store.GetFileAsync(url, Hash[..8]);
        DateTime written = File.GetLastWriteTimeUtc(path);

        await File.WriteAllBytesAsync(path, Content[..^1]);
        File.SetLastWriteTimeUtc(path, written); // same time: only the size gives it away
        using (var offline = fixture.Store(offline: true))
        {
            var error = await Assert.ThrowsExactlyAsync<WeightDownloadException>(() => offline.GetFileAsync(url, Hash[..8]));
            Assert.AreEqual(WeightDownloadFailure.NotAvailableOffline, error.Reason);
            StringAssert.Contains(error.Message, "damaged");
            StringAssert.Contains(error.Message, path);
            StringAssert.Contains(error.Message, url.ToString());
        }

        Assert.AreEqual(path, await store.GetFileAsync(url, Hash[..8]));
        Assert.AreEqual(2, server.Count("GET", FileName), "downloaded again");
        CollectionAssert.AreEqual(Content, await File.ReadAllBytesAsync(path));
    }

    [TestMethod]
    public async Task CachedFileTampered_SameSize_IsHashedAgainAndReplaced()
    {
        using var fixture = new DownloadFixture();
        using var server = ServeFile();
        Uri url = server.Url("models/" + FileName);
        using var store = fixture.Store();
        string path = await store.GetFileAsync(url, Hash[..8]);

        var tampered = (byte[])Content.Clone();
        tampered[12345] ^= 0xFF;
        await File.WriteAllBytesAsync(path, tampered);
        File.SetLastWriteTimeUtc(path, File.GetLastWriteTimeUtc(path).AddSeconds(5));

        Assert.AreEqual(path, await store.GetFileAsync(url, Hash[..8]));
        Assert.AreEqual(2, server.Count("GET", FileName));
        CollectionAssert.AreEqual(Content, await File.ReadAllBytesAsync(path));
    }

    [TestMethod]
    public async Task FilePlantedInTorchHomeByName_IsUsedWithoutNetwork()
    {
        using var fixture = new DownloadFixture();
        Directory.CreateDirectory(fixture.Checkpoints);
        string planted = Path.Combine(fixture.Checkpoints, FileName);
        await File.WriteAllBytesAsync(planted, Content);
        var options = fixture.Options();
        var handler = new NoNetworkHandler();
        options.HttpHandler = handler;
        using var store = new WeightStore(options);

        string path = await store.GetFileAsync(new Uri(WeightStoreOptions.TorchvisionBaseUrl, FileName), Hash[..8]);

        Assert.AreEqual(planted, path);
        Assert.AreEqual(0, handler.Calls);
    }

    [TestMethod]
    public async Task Mirror_ReplacesTheTorchvisionBaseUrl()
    {
        using var fixture = new DownloadFixture();
        using var server = new LoopbackServer(request =>
            request.Path == "/mirror/models/" + FileName ? ServerResponse.File(Content, request) : ServerResponse.NotFound());
        fixture.Environment["CNN_WEIGHTS_MIRROR"] = server.Url("mirror/models").ToString(); // no trailing slash: one is added
        using var store = fixture.Store();
        var published = new Uri(WeightStoreOptions.TorchvisionBaseUrl, FileName);

        Assert.AreEqual(server.Url("mirror/models/" + FileName), store.EffectiveUrl(published));
        CollectionAssert.AreEqual(Content, await File.ReadAllBytesAsync(await store.GetFileAsync(published, Hash[..8])));
    }

    [TestMethod]
    public async Task Cancellation_LeavesOnlyAPartialFile_WhichTheNextCallCompletes()
    {
        using var fixture = new DownloadFixture();
        using var server = ServeFile(chunkDelay: TimeSpan.FromMilliseconds(40));
        using var store = fixture.Store();
        Uri url = server.Url("models/" + FileName);
        using var cancel = new CancellationTokenSource();
        fixture.Reports.Clear();

        var download = store.GetFileAsync(url, Hash[..8], cancel.Token);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!fixture.Reports.Any(r => r.Stage == DownloadStage.Downloading) && !download.IsCompleted && DateTime.UtcNow < deadline) await Task.Delay(10);
        Assert.IsFalse(download.IsCompleted, "the slow download was still running");
        cancel.Cancel();
        await Assert.ThrowsAsync<OperationCanceledException>(() => download);

        CollectionAssert.AreEqual(new[] { FileName + ".lock", FileName + ".partial" }, DownloadFixture.FilesIn(fixture.Checkpoints));
        CollectionAssert.AreEqual(Content, await File.ReadAllBytesAsync(await store.GetFileAsync(url, Hash[..8])));
    }

    [TestMethod]
    [DataRow(0, DisplayName = "complete partial file: the server's 416 confirms it, nothing is fetched again")]
    [DataRow(1000, DisplayName = "partial file longer than the file: started over")]
    public async Task PartialFileAsLongOrLongerThanTheFile_IsFinishedOrRestarted(int extra)
    {
        using var fixture = new DownloadFixture();
        using var server = ServeFile();
        using var store = fixture.Store();
        Directory.CreateDirectory(fixture.Checkpoints);
        string path = Path.Combine(fixture.Checkpoints, FileName);
        await File.WriteAllBytesAsync(path + ".partial", Content.Concat(new byte[extra]).ToArray());

        Assert.AreEqual(path, await store.GetFileAsync(server.Url("models/" + FileName), Hash[..8]));

        CollectionAssert.AreEqual(Content, await File.ReadAllBytesAsync(path));
        var gets = server.Requests.Where(r => r.Method == "GET").ToList();
        Assert.AreEqual(Content.Length + extra, gets[0].RangeStart);
        Assert.AreEqual(extra == 0 ? 1 : 2, gets.Count);
        Assert.IsFalse(File.Exists(path + ".partial"));
    }

    [TestMethod]
    public async Task StalledConnection_TimesOut_KeepingThePartialFile()
    {
        using var fixture = new DownloadFixture();
        using var server = ServeFile(chunkDelay: TimeSpan.FromSeconds(30));
        var options = fixture.Options();
        options.StallTimeout = TimeSpan.FromMilliseconds(300);
        using var store = new WeightStore(options);
        Uri url = server.Url("models/" + FileName);

        var error = await Assert.ThrowsExactlyAsync<WeightDownloadException>(() => store.GetFileAsync(url, Hash[..8]));

        StringAssert.Contains(error.Message, "sent nothing for");
        StringAssert.Contains(error.Message, url.ToString());
        Assert.AreEqual(16 * 1024, new FileInfo(Path.Combine(fixture.Checkpoints, FileName + ".partial")).Length, "the first chunk is kept");
        Assert.IsFalse(File.Exists(Path.Combine(fixture.Checkpoints, FileName)));
    }

    [TestMethod]
    public async Task CatalogEntry_IsFetchedByItsUrlAndTheHashInItsFileName()
    {
        using var fixture = new DownloadFixture();
        using var server = ServeFile();
        using var store = fixture.Store();
        var config = new PretrainedConfig(new InputSize(3, 224, 224), PretrainedConfig.ImageNetMean, PretrainedConfig.ImageNetStd, 0.875, "bilinear",
                                          "conv1", "fc", 1000, "test");
        var entry = new WeightsEntry("IMAGENET1K_V1", server.Url("models/" + FileName).ToString(), config, new WeightsMetadata(1, 0, 0, "", []));

        Assert.IsFalse(store.IsCached(entry));
        string path = await store.GetFileAsync(entry);

        Assert.AreEqual(store.CachePathOf(entry), path);
        Assert.IsTrue(store.IsCached(entry));
        CollectionAssert.AreEqual(Content, await File.ReadAllBytesAsync(path));

        var unhashed = entry with { Url = server.Url("models/tinynet.pth").ToString() };
        var error = await Assert.ThrowsExactlyAsync<WeightDownloadException>(() => store.GetFileAsync(unhashed));
        Assert.AreEqual(WeightDownloadFailure.InvalidRequest, error.Reason);
        Assert.AreEqual(1, server.Requests.Count, "refused before any request");
    }

    [TestMethod]
    public async Task TwoStoresRacingForOneFile_DownloadItOnce()
    {
        using var fixture = new DownloadFixture();
        using var server = ServeFile(chunkDelay: TimeSpan.FromMilliseconds(5));
        using var first = fixture.Store();
        using var second = fixture.Store();
        Uri url = server.Url("models/" + FileName);

        string[] paths = await Task.WhenAll(Task.Run(() => first.GetFileAsync(url, Hash[..8])), Task.Run(() => second.GetFileAsync(url, Hash[..8])));

        Assert.AreEqual(paths[0], paths[1]);
        Assert.AreEqual(1, server.Count("GET", FileName), "the second waited for the first, then used its file");
        Assert.IsTrue(fixture.Reports.Any(r => r.Stage == DownloadStage.WaitingForOtherProcess));
        CollectionAssert.AreEqual(Content, await File.ReadAllBytesAsync(paths[0]));
    }
}
