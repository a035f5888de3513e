using System.IO.Compression;
using Cnn.Backbones.Native;
using Cnn.Backbones.Weights;
using Cnn.Backbones.Weights.Pickle;
using Cnn.Tests.Shared;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Weights;

[TestClass]
public sealed class TorchCheckpointTests
{
    /// <summary>
    /// A conv+bn+linear state dict with a float16 and a bfloat16 tensor, an int64 buffer, a transposed (non-contiguous) tensor
    /// and two tensors viewing one storage, saved in several ways by torch.save. Prints the exact values as JSON.
    /// </summary>
    internal const string MakeCheckpoints = """
        import os
        torch.manual_seed(0)
        class Tiny(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv2d(3, 4, 3)
                self.bn = torch.nn.BatchNorm2d(4)
                self.fc = torch.nn.Linear(4, 2)
                self.register_buffer("steps", torch.tensor([3, -7, 2**40], dtype=torch.int64))
        m = Tiny()
        m.train()
        with torch.no_grad():
            m.bn(m.conv(torch.randn(2, 3, 5, 5)))  # non-trivial running stats and num_batches_tracked
        sd = m.state_dict()
        sd["extra.half"] = torch.randn(2, 3).half()
        sd["extra.bf16"] = torch.randn(5).bfloat16()
        sd["extra.transposed"] = torch.randn(3, 4).t()
        base = torch.randn(4, 5)
        sd["shared.rows"] = base[1:3]
        sd["shared.column"] = base[:, 2]
        sd["extra.flags"] = torch.tensor([True, False, True])
        assert not sd["extra.transposed"].is_contiguous() and not sd["shared.column"].is_contiguous()
        assert sd["shared.rows"].storage().data_ptr() == sd["shared.column"].storage().data_ptr()

        out = sys.argv[1]
        torch.save(sd, os.path.join(out, "plain.pth"))
        torch.save(sd, os.path.join(out, "protocol4.pth"), pickle_protocol=4)
        trained = Tiny()  # a separate model, so the optimizer step does not change sd's tensors
        opt = torch.optim.SGD(trained.parameters(), lr=0.1, momentum=0.9)
        trained.fc(torch.randn(1, 4)).sum().backward()
        opt.step()
        torch.save({"epoch": 3, "arch": "tiny", "best": 0.75, "flags": [1, 2.5, None, True, (1, "a")], "state_dict": sd,
                    "optimizer": opt.state_dict()}, os.path.join(out, "wrapped.pth"))
        torch.save({"model": {"module." + k: v for k, v in sd.items()}, "epoch": 1}, os.path.join(out, "parallel_model.pth"))
        dp = torch.nn.DataParallel(m).state_dict()
        assert all(k.startswith("module.") for k in dp)
        for k, v in sd.items():
            if k.startswith(("extra.", "shared.")):
                dp["module." + k] = v
        torch.save(dp, os.path.join(out, "dataparallel.pth"))
        torch.save(sd, os.path.join(out, "legacy.pth"), _use_new_zipfile_serialization=False)
        print(dump(sd))
        """;

    private static TempDirectory? _fixture;
    private static Dictionary<string, WeightsReference.Expected>? _expected;

    /// <summary>Generates the checkpoints once for the class (starting Python and torch costs seconds).</summary>
    [ClassInitialize]
    public static void MakeFixture(TestContext _)
    {
        _fixture = new TempDirectory();
        _expected = WeightsReference.ParseDump(WeightsReference.Run(MakeCheckpoints, _fixture.Path));
    }

    [ClassCleanup]
    public static void RemoveFixture() => _fixture?.Dispose();

    private static TempDirectory Fixture => _fixture!;

    [TestInitialize]
    public void Init() => TorchRuntime.EnsureLoaded();

    [TestMethod]
    public void ReadsEveryTensorExactly_InEveryWayTorchSaveWritesIt()
    {
        var dir = Fixture;
        var expected = _expected!;
        CollectionAssert.Contains(expected.Keys.ToList(), "bn.num_batches_tracked");

        foreach (var file in new[] { "plain.pth", "protocol4.pth", "wrapped.pth", "parallel_model.pth", "dataparallel.pth" })
        {
            string path = dir.File(file);
            Assert.AreEqual(WeightFile.Format.TorchZip, WeightFile.Detect(path), file);
            using var weights = WeightFile.Load(path);
            WeightsReference.AssertMatches(expected, weights, context: file);
            foreach (var (name, tensor) in weights)
                Assert.IsTrue(tensor.is_contiguous(), $"{file}: {name} must be a contiguous copy");

            var infos = WeightFile.Inspect(path);
            CollectionAssert.AreEqual(expected.Keys.ToList(), infos.Select(i => i.Name).ToList(), file);
            foreach (var info in infos)
            {
                Assert.AreEqual(expected[info.Name].DType, info.DTypeName, $"{file}: {info.Name}");
                CollectionAssert.AreEqual(expected[info.Name].Shape, info.Shape.ToArray(), $"{file}: {info.Name}");
            }
            long total = expected.Where(kv => !kv.Key.EndsWith("num_batches_tracked", StringComparison.Ordinal)).Sum(kv => kv.Value.Values.LongLength);
            Assert.AreEqual(total, weights.TotalParameters, file);
        }
    }

    [TestMethod]
    public void TensorsSharingAStorageBecomeIndependentCopies()
    {
        var dir = Fixture;
        using var weights = TorchCheckpoint.Read(dir.File("plain.pth"));
        var rows = weights["shared.rows"];
        var column = weights["shared.column"];
        float before = column[1].item<float>();
        rows.fill_(Scalars.Zero); // rows is base[1:3], which contains column[1] and column[2] in Python
        Assert.AreEqual(before, column[1].item<float>());
    }

    [TestMethod]
    public void LegacyFormatIsRefusedWithResaveAdvice()
    {
        string path = Fixture.File("legacy.pth");
        Assert.AreEqual(WeightFile.Format.Pickle, WeightFile.Detect(path));
        var ex = Assert.ThrowsExactly<WeightFileException>(() => WeightFile.Load(path));
        StringAssert.Contains(ex.Message, path);
        StringAssert.Contains(ex.Message, "legacy format");
        StringAssert.Contains(ex.Message, "torch.save(obj, path, _use_new_zipfile_serialization=True)");
        Assert.ThrowsExactly<WeightFileException>(() => WeightFile.Inspect(path));
    }

    [TestMethod]
    public void ZipCheckpointCallingOsSystemIsRefusedAndNothingRuns()
    {
        using var dir = new TempDirectory();
        string marker = dir.File("pwned");
        string path = dir.File("evil.pth");
        WeightsReference.Run("""
            import os
            class Evil:
                def __reduce__(self):
                    return (os.system, ("touch " + sys.argv[2],))
            torch.save({"weight": torch.zeros(2), "evil": Evil()}, sys.argv[1])
            """, path, marker);
        Assert.IsFalse(File.Exists(marker), "saving must not have run the payload");

        var ex = Assert.ThrowsExactly<UnsafePickleException>(() => WeightFile.Load(path));
        Assert.AreEqual("posix.system", ex.Global);
        StringAssert.Contains(ex.Message, "refused to load 'evil.pth'");
        StringAssert.Contains(ex.Message, "'posix.system'");
        Assert.AreEqual(path, ex.FilePath);
        Assert.ThrowsExactly<UnsafePickleException>(() => WeightFile.Inspect(path));
        Assert.IsFalse(File.Exists(marker), "the payload must never run");
    }

    [TestMethod]
    public void BarePickleCallingEvalIsRefusedAndNothingRuns()
    {
        using var dir = new TempDirectory();
        string marker = dir.File("pwned");
        string path = dir.File("evil.pkl");
        WeightsReference.Run("""
            import builtins, pickle
            class Evil:
                def __reduce__(self):
                    return (builtins.eval, ("open(%r, 'w').close()" % sys.argv[2],))
            with open(sys.argv[1], "wb") as f:
                pickle.dump({"weight": Evil()}, f, protocol=4)
            """, path, marker);
        var ex = Assert.ThrowsExactly<UnsafePickleException>(() => WeightFile.Load(path));
        Assert.AreEqual("builtins.eval", ex.Global);
        StringAssert.Contains(ex.Message, "'builtins.eval'");
        Assert.IsFalse(File.Exists(marker), "the payload must never run");
    }

    /// <summary>
    /// A checkpoint of timm's train.py holds <c>args: argparse.Namespace</c> beside its state dict: the Namespace is never built
    /// (an inert placeholder), the state dict loads. A global inside the state dict itself is still refused, and nothing runs.
    /// </summary>
    [TestMethod]
    public void TimmTrainCheckpointWithArgparseNamespaceLoadsItsStateDict()
    {
        using var dir = new TempDirectory();
        string timm = dir.File("checkpoint.pth.tar"), evil = dir.File("evil.pth"), marker = dir.File("pwned");
        WeightsReference.Run("""
            import argparse, os
            torch.manual_seed(0)
            model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
            args = argparse.Namespace(model="resnet18", lr=0.1, epochs=3, opt="sgd")
            torch.save({"epoch": 2, "arch": "resnet18", "state_dict": model.state_dict(), "optimizer": {"lr": 0.1},
                        "version": 2, "args": args, "metric": 0.5}, sys.argv[1])
            class Evil:
                def __reduce__(self):
                    return (os.system, ("touch " + sys.argv[3],))
            torch.save({"args": args, "state_dict": {"weight": torch.zeros(2), "hook": Evil()}}, sys.argv[2])
            torch.save(model.state_dict(), sys.argv[1] + ".expected.pth")
            """, timm, evil, marker);
        using var loaded = WeightFile.Load(timm);
        using var expected = WeightFile.Load(timm + ".expected.pth");
        CollectionAssert.AreEqual(expected.Keys.ToList(), loaded.Keys.ToList());
        foreach (var key in expected.Keys)
            Assert.IsTrue(expected[key].eq(loaded[key]).all().item<bool>(), key);
        Assert.AreEqual(expected.Keys.Count(), WeightFile.Inspect(timm).Count);

        var refused = Assert.ThrowsExactly<UnsafePickleException>(() => WeightFile.Load(evil));
        Assert.AreEqual("posix.system", refused.Global);
        Assert.IsFalse(File.Exists(marker), "the payload must never run");
    }

    [TestMethod]
    public void WholePickledModelIsRefusedWithStateDictAdvice()
    {
        using var dir = new TempDirectory();
        string path = dir.File("model.pth");
        WeightsReference.Run("torch.save(torch.nn.Linear(2, 3), sys.argv[1])\n", path);
        var ex = Assert.ThrowsExactly<UnsafePickleException>(() => WeightFile.Load(path));
        StringAssert.StartsWith(ex.Global, "torch.nn.modules.linear.");
        StringAssert.Contains(ex.Message, "model.state_dict()");
    }

    [TestMethod]
    public void HarmlessBarePickleIsNotACheckpoint()
    {
        using var dir = new TempDirectory();
        string path = dir.File("plain.pkl");
        WeightsReference.Run("import pickle\nopen(sys.argv[1], 'wb').write(pickle.dumps({'a': [1, 2.5, 'x']}, protocol=2))\n", path);
        var ex = Assert.ThrowsExactly<WeightFileException>(() => WeightFile.Load(path));
        StringAssert.Contains(ex.Message, "bare pickle");
        StringAssert.Contains(ex.Message, path);
    }

    [TestMethod]
    public void DamagedCheckpointsFailWithClearErrors()
    {
        using var dir = new TempDirectory();
        byte[] original = File.ReadAllBytes(Fixture.File("plain.pth"));

        string truncated = dir.File("truncated.pth");
        File.WriteAllBytes(truncated, original[..(original.Length / 2)]);
        var ex = Assert.ThrowsExactly<WeightFileException>(() => WeightFile.Load(truncated));
        StringAssert.Contains(ex.Message, truncated);

        // A zip whose storage entry is missing.
        string missingStorage = dir.File("missing_storage.pth");
        WeightsReference.Run("""
            import zipfile
            src = zipfile.ZipFile(sys.argv[1])
            with zipfile.ZipFile(sys.argv[2], "w") as dst:
                for info in src.infolist():
                    if not info.filename.endswith("/data/0"):
                        dst.writestr(info, src.read(info))
            """, Fixture.File("plain.pth"), missingStorage);
        ex = Assert.ThrowsExactly<WeightFileException>(() => WeightFile.Load(missingStorage));
        StringAssert.Contains(ex.Message, "storage '0' is missing");
        StringAssert.Contains(ex.Message, missingStorage);

        // A zip that is not a checkpoint.
        string notCheckpoint = dir.File("other.zip");
        WeightsReference.Run("import zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z: z.writestr('readme.txt', 'hi')\n", notCheckpoint);
        ex = Assert.ThrowsExactly<WeightFileException>(() => WeightFile.Load(notCheckpoint));
        StringAssert.Contains(ex.Message, "data.pkl");
    }

    [TestMethod]
    public void CorruptedPicklesOnlyEverFailWithWeightFileException()
    {
        // Mutate the real data.pkl at random (seeded) and feed it through the whole reader: every outcome must be a
        // clean load or a WeightFileException, never a crash, another exception type or an absurd allocation.
        byte[] original = File.ReadAllBytes(Fixture.File("plain.pth"));
        byte[] pickle;
        using (var zip = new ZipArchive(new MemoryStream(original)))
        {
            var entry = zip.Entries.Single(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal));
            using var stream = entry.Open();
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            pickle = copy.ToArray();
        }
        var random = new Random(1234);
        int refused = 0, loaded = 0;
        using var dir = new TempDirectory();
        for (int iteration = 0; iteration < 2000; iteration++)
        {
            byte[] mutated = Mutate(pickle, random);
            var storage = new StorageRef("0", ScalarType.Float32, 108, "cpu");
            var unpickler = new RestrictedUnpickler("fuzz.pth", "data.pkl", _ => storage);
            try
            {
                unpickler.Load(mutated);
            }
            catch (WeightFileException)
            {
            }
            catch (Exception ex)
            {
                Assert.Fail($"iteration {iteration}: unpickler threw {ex.GetType().Name}: {ex.Message}");
            }

            if (iteration % 10 != 0) continue; // the full reader, with zip round trips, on a sample
            string path = dir.File($"fuzz{iteration}.pth");
            File.WriteAllBytes(path, ReplaceEntry(original, "/data.pkl", mutated));
            try
            {
                using var weights = WeightFile.Load(path);
                loaded++;
            }
            catch (WeightFileException)
            {
                refused++;
            }
            catch (Exception ex)
            {
                Assert.Fail($"iteration {iteration}: reader threw {ex.GetType().Name}: {ex.Message}");
            }
            File.Delete(path);
        }
        Assert.IsTrue(refused > 0, "some mutations must be refused");
    }

    private static byte[] Mutate(byte[] data, Random random)
    {
        byte[] copy = (byte[])data.Clone();
        switch (random.Next(3))
        {
            case 0:
                return copy[..random.Next(copy.Length)];
            case 1:
                for (int i = random.Next(1, 4); i > 0; i--) copy[random.Next(copy.Length)] = (byte)random.Next(256);
                return copy;
            default:
                // Replace one small integer argument (BININT1) with a large one to stress sizes, strides and offsets.
                int position = random.Next(copy.Length - 1);
                for (int i = position; i < copy.Length - 1; i++)
                    if (copy[i] == (byte)'K') { copy[i + 1] = (byte)random.Next(256); break; }
                return copy;
        }
    }

    private static byte[] ReplaceEntry(byte[] zipBytes, string suffix, byte[] content)
    {
        using var output = new MemoryStream();
        using (var source = new ZipArchive(new MemoryStream(zipBytes)))
        using (var target = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var entry in source.Entries)
            {
                var copy = target.CreateEntry(entry.FullName, CompressionLevel.NoCompression);
                using var to = copy.Open();
                if (entry.FullName.EndsWith(suffix, StringComparison.Ordinal))
                    to.Write(content);
                else
                {
                    using var from = entry.Open();
                    from.CopyTo(to);
                }
            }
        }
        return output.ToArray();
    }
}
