using Cnn.Tests.Shared;
using System.Text;
using Cnn.Backbones.Weights.Download;

namespace Cnn.Backbones.Tests.Download;

/// <summary><c>hf-hub:</c> names against a hub on loopback (<c>HF_ENDPOINT</c>), cached in huggingface_hub's layout.</summary>
[TestClass]
public sealed class WeightStoreHubTests
{
    private static readonly byte[] Config = Encoding.UTF8.GetBytes("""{"architecture": "resnet50", "num_classes": 1000}""");
    private static readonly byte[] Safetensors = DownloadFixture.RandomBytes(200_000, seed: 1);
    private static readonly byte[] PickleBin = DownloadFixture.RandomBytes(150_000, seed: 2);

    private static DownloadFixture FixtureFor(FakeHub hub)
    {
        var fixture = new DownloadFixture();
        fixture.Environment["HF_ENDPOINT"] = hub.Server.BaseUrl.ToString().TrimEnd('/');
        return fixture;
    }

    private static string RepositoryDirectory(DownloadFixture fixture) => Path.Combine(fixture.HubCache, "models--timm--tiny-test");

    [TestMethod]
    public async Task HubName_FetchesConfigAndSafetensors_IntoTheHubCacheLayout_ThenWorksOffline()
    {
        using var hub = new FakeHub("timm/tiny-test", new Dictionary<string, byte[]>
        {
            ["config.json"] = Config, ["model.safetensors"] = Safetensors, ["pytorch_model.bin"] = PickleBin,
        });
        using var fixture = FixtureFor(hub);
        using var store = fixture.Store();
        var id = HubModelId.Parse("hf-hub:timm/tiny-test");

        var snapshot = await store.GetHubFilesAsync(id);

        string repo = RepositoryDirectory(fixture);
        string snapshotDir = Path.Combine(repo, "snapshots", FakeHub.Commit);
        Assert.AreEqual(id, snapshot.Id);
        Assert.AreEqual(FakeHub.Commit, snapshot.Commit);
        Assert.AreEqual(snapshotDir, snapshot.Directory);
        Assert.AreEqual(Path.Combine(snapshotDir, "config.json"), snapshot.ConfigPath);
        Assert.AreEqual(Path.Combine(snapshotDir, "model.safetensors"), snapshot.WeightsPath);
        Assert.AreEqual("model.safetensors", snapshot.WeightsFileName);
        CollectionAssert.AreEqual(Config, await File.ReadAllBytesAsync(snapshot.ConfigPath!));
        CollectionAssert.AreEqual(Safetensors, await File.ReadAllBytesAsync(snapshot.WeightsPath));

        // huggingface_hub's layout: snapshot files link to blobs named by ETag; refs/main names the commit.
        string sha256 = DownloadFixture.Sha256(Safetensors);
        string gitHash = FakeHub.GitBlobHash(Config);
        Assert.AreEqual(Path.Combine("..", "..", "blobs", sha256), new FileInfo(snapshot.WeightsPath).LinkTarget);
        Assert.AreEqual(Path.Combine("..", "..", "blobs", gitHash), new FileInfo(snapshot.ConfigPath!).LinkTarget);
        CollectionAssert.AreEqual(new[] { gitHash, sha256 }.Order().ToArray(), DownloadFixture.FilesIn(Path.Combine(repo, "blobs")), "no .incomplete left");
        Assert.AreEqual(FakeHub.Commit, await File.ReadAllTextAsync(Path.Combine(repo, "refs", "main")));
        Assert.IsTrue(File.Exists(Path.Combine(fixture.HubCache, ".locks", "models--timm--tiny-test", sha256 + ".lock")));

        // Once main resolved to a commit, the weights were asked for at that commit; pytorch_model.bin was never needed.
        Assert.IsTrue(hub.Server.Requests.Any(r => r.Method == "HEAD" && r.Path == $"/timm/tiny-test/resolve/{FakeHub.Commit}/model.safetensors"));
        Assert.AreEqual(0, hub.Server.Count("HEAD", "pytorch_model.bin") + hub.Server.Count("GET", "pytorch_model.bin"));
        Assert.AreEqual(1, hub.Server.Count("GET", sha256), "the bytes came from the CDN host");

        fixture.Environment["HF_HUB_OFFLINE"] = "1";
        var offlineOptions = fixture.Options();
        var handler = new NoNetworkHandler();
        offlineOptions.HttpHandler = handler;
        using var offline = new WeightStore(offlineOptions);
        Assert.AreEqual(snapshot, await offline.GetHubFilesAsync(id));
        Assert.AreEqual(0, handler.Calls);
    }

    [TestMethod]
    public async Task WithoutSafetensorsOrConfig_TakesPytorchModelBin_AndRemembersTheAbsentFilesForOfflineUse()
    {
        using var hub = new FakeHub("timm/tiny-test", new Dictionary<string, byte[]> { ["pytorch_model.bin"] = PickleBin });
        using var fixture = FixtureFor(hub);
        using var store = fixture.Store();

        var snapshot = await store.GetHubFilesAsync(HubModelId.Parse("hf-hub:timm/tiny-test"));

        Assert.IsNull(snapshot.ConfigPath);
        Assert.AreEqual("pytorch_model.bin", snapshot.WeightsFileName);
        CollectionAssert.AreEqual(PickleBin, await File.ReadAllBytesAsync(snapshot.WeightsPath));
        CollectionAssert.AreEqual(new[] { "config.json", "model.safetensors" },
            DownloadFixture.FilesIn(Path.Combine(RepositoryDirectory(fixture), ".no_exist", FakeHub.Commit)));

        using var offline = fixture.Store(offline: true);
        Assert.AreEqual(snapshot, await offline.GetHubFilesAsync(HubModelId.Parse("hf-hub:timm/tiny-test")));
    }

    [TestMethod]
    public async Task OpenClipFileSet_FetchesOpenClipNames()
    {
        using var hub = new FakeHub("timm/tiny-test", new Dictionary<string, byte[]>
        {
            ["open_clip_config.json"] = Config, ["open_clip_model.safetensors"] = Safetensors, ["model.safetensors"] = PickleBin,
        });
        using var fixture = FixtureFor(hub);
        using var store = fixture.Store();

        var snapshot = await store.GetHubFilesAsync(HubModelId.Parse("hf-hub:timm/tiny-test"), HubFileSet.OpenClip);

        Assert.AreEqual("open_clip_model.safetensors", snapshot.WeightsFileName);
        Assert.AreEqual("open_clip_config.json", Path.GetFileName(snapshot.ConfigPath));
        CollectionAssert.AreEqual(Safetensors, await File.ReadAllBytesAsync(snapshot.WeightsPath));
    }

    [TestMethod]
    public async Task CdnBytesNotMatchingTheLinkedEtag_AreRefused_NothingCached()
    {
        var tampered = (byte[])Safetensors.Clone();
        tampered[^1] ^= 0x55;
        using var hub = new FakeHub("timm/tiny-test", new Dictionary<string, byte[]> { ["model.safetensors"] = Safetensors }, (_, _) => tampered);
        using var fixture = FixtureFor(hub);
        using var store = fixture.Store();

        var error = await Assert.ThrowsExactlyAsync<WeightDownloadException>(() => store.GetHubFilesAsync(HubModelId.Parse("hf-hub:timm/tiny-test")));

        Assert.AreEqual(WeightDownloadFailure.HashMismatch, error.Reason);
        StringAssert.Contains(error.Message, DownloadFixture.Sha256(Safetensors));
        StringAssert.Contains(error.Message, DownloadFixture.Sha256(tampered));
        string repo = RepositoryDirectory(fixture);
        Assert.AreEqual(0, DownloadFixture.FilesIn(Path.Combine(repo, "blobs")).Length, "no blob, not even .incomplete");
        Assert.IsFalse(File.Exists(Path.Combine(repo, "snapshots", FakeHub.Commit, "model.safetensors")));
    }

    [TestMethod]
    public async Task RepositoryWithoutWeights_NamesTheFilesTried()
    {
        using var hub = new FakeHub("timm/tiny-test", new Dictionary<string, byte[]> { ["config.json"] = Config });
        using var fixture = FixtureFor(hub);
        using var store = fixture.Store();

        var error = await Assert.ThrowsExactlyAsync<WeightDownloadException>(() => store.GetHubFilesAsync(HubModelId.Parse("hf-hub:timm/tiny-test")));

        Assert.AreEqual(WeightDownloadFailure.FileNotInRepository, error.Reason);
        StringAssert.Contains(error.Message, "model.safetensors");
        StringAssert.Contains(error.Message, "pytorch_model.bin");
        StringAssert.Contains(error.Message, hub.Server.Url("timm/tiny-test/resolve/main/model.safetensors").ToString());
    }

    [TestMethod]
    public async Task Offline_NotCached_OneMessageWithTheUrlAndWhereToPutIt()
    {
        using var fixture = new DownloadFixture();
        fixture.Environment["CNN_OFFLINE"] = "yes";
        var options = fixture.Options();
        var handler = new NoNetworkHandler();
        options.HttpHandler = handler;
        using var store = new WeightStore(options);

        var error = await Assert.ThrowsExactlyAsync<WeightDownloadException>(() => store.GetHubFilesAsync(HubModelId.Parse("hf-hub:timm/tiny-test")));

        Assert.AreEqual(WeightDownloadFailure.NotAvailableOffline, error.Reason);
        StringAssert.Contains(error.Message, new Uri(WeightStoreOptions.DefaultHubEndpoint, "timm/tiny-test/resolve/main/model.safetensors").ToString());
        StringAssert.Contains(error.Message, RepositoryDirectory(fixture));
        StringAssert.Contains(error.Message, Path.Combine(RepositoryDirectory(fixture), "refs", "main"));
        Assert.AreEqual(0, handler.Calls);
    }

    [TestMethod]
    public async Task Offline_CachedBlobTruncated_IsRefused_OnlineItIsFetchedAgain()
    {
        using var hub = new FakeHub("timm/tiny-test", new Dictionary<string, byte[]> { ["config.json"] = Config, ["model.safetensors"] = Safetensors });
        using var fixture = FixtureFor(hub);
        using var store = fixture.Store();
        var id = HubModelId.Parse("hf-hub:timm/tiny-test");
        var snapshot = await store.GetHubFilesAsync(id);
        string blob = Path.Combine(RepositoryDirectory(fixture), "blobs", DownloadFixture.Sha256(Safetensors));
        await File.WriteAllBytesAsync(blob, Safetensors[..^1]);

        using (var offline = fixture.Store(offline: true))
        {
            var error = await Assert.ThrowsExactlyAsync<WeightDownloadException>(() => offline.GetHubFilesAsync(id));
            Assert.AreEqual(WeightDownloadFailure.NotAvailableOffline, error.Reason);
            StringAssert.Contains(error.Message, "damaged");
            StringAssert.Contains(error.Message, snapshot.WeightsPath);
        }

        Assert.AreEqual(snapshot, await store.GetHubFilesAsync(id));
        CollectionAssert.AreEqual(Safetensors, await File.ReadAllBytesAsync(snapshot.WeightsPath));
        Assert.AreEqual(2, hub.Server.Count("GET", DownloadFixture.Sha256(Safetensors)));
    }

    [TestMethod]
    public async Task HubUnreachable_ButCached_UsesTheCache()
    {
        var hub = new FakeHub("timm/tiny-test", new Dictionary<string, byte[]> { ["model.safetensors"] = Safetensors });
        using var fixture = FixtureFor(hub);
        var id = HubModelId.Parse("hf-hub:timm/tiny-test");
        HubSnapshot snapshot;
        using (var store = fixture.Store()) snapshot = await store.GetHubFilesAsync(id);
        hub.Dispose(); // connections are refused from now on

        using var again = fixture.Store();
        Assert.AreEqual(snapshot, await again.GetHubFilesAsync(id));
    }

    [TestMethod]
    [DataRow("../model.safetensors")]
    [DataRow("/etc/passwd")]
    [DataRow("a/../../b.bin")]
    [DataRow("")]
    public async Task FileNamesOutsideTheSnapshot_AreRefused(string name)
    {
        using var fixture = new DownloadFixture();
        var options = fixture.Options();
        var handler = new NoNetworkHandler();
        options.HttpHandler = handler;
        using var store = new WeightStore(options);

        var error = await Assert.ThrowsExactlyAsync<ArgumentException>(
            () => store.GetHubFilesAsync(HubModelId.Parse("hf-hub:timm/tiny-test"), new HubFileSet("config.json", [name])));

        StringAssert.Contains(error.Message, $"'{name}'");
        Assert.AreEqual(0, handler.Calls);
    }

    [TestMethod]
    public async Task RevisionPinnedToACommit_AsksForThatCommit()
    {
        using var hub = new FakeHub("timm/tiny-test", new Dictionary<string, byte[]> { ["model.safetensors"] = Safetensors });
        using var fixture = FixtureFor(hub);
        using var store = fixture.Store();

        var snapshot = await store.GetHubFilesAsync(HubModelId.Parse($"hf-hub:timm/tiny-test@{FakeHub.Commit}"));

        Assert.AreEqual(FakeHub.Commit, snapshot.Commit);
        Assert.IsTrue(hub.Server.Requests.Where(r => r.Path.Contains("/resolve/", StringComparison.Ordinal)).All(r => r.Path.Contains(FakeHub.Commit, StringComparison.Ordinal)));
        Assert.IsFalse(Directory.Exists(Path.Combine(RepositoryDirectory(fixture), "refs")), "a commit needs no ref");
    }
}
