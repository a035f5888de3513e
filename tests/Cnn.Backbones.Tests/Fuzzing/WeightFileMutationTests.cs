using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Cnn.Backbones.Native;
using Cnn.Backbones.Tests.Onnx;
using Cnn.Backbones.Tests.Weights;
using Cnn.Backbones.Weights;
using Cnn.Tests.Shared;
using Google.Protobuf;
using Onnx;
using TorchSharp;

namespace Cnn.Backbones.Tests.Fuzzing;

/// <summary>
/// Bounded, seeded mutation tests of the weight readers (torch.save zip + restricted unpickler, safetensors, ONNX), seeded with
/// real files: every mutant is read with <see cref="WeightFile.Load"/> and must either load or be refused with the documented
/// <see cref="WeightFileException"/> (<see cref="UnsafePickleException"/> is one), within a per-case timeout, allocating no more
/// than its length justifies, managed or as tensors. The regression tests below are the inputs these runs and the AFL++
/// harnesses (fuzz/Cnn.Fuzz) found.
/// </summary>
[TestClass]
public sealed class WeightFileMutationTests
{
    private const long Slack = 8L << 20; // FileStream's 1 MB buffer, zip and JSON readers' fixed costs

    private static bool Documented(Exception ex) => ex is WeightFileException;

    private static MutationSummary Fuzz(string format, IReadOnlyList<byte[]> seeds, int cases, Func<long, long> managed, Func<long, long> native)
    {
        TorchRuntime.EnsureLoaded();
        using var dir = new TempDirectory();
        string path = dir.File("case");
        return new MutationFuzz
        {
            Format = format,
            Seeds = seeds,
            Cases = cases,
            Parse = bytes =>
            {
                File.WriteAllBytes(path, bytes);
                WeightFile.Inspect(path);
                WeightFile.Load(path).Dispose();
            },
            IsDocumented = Documented,
            ManagedBound = managed,
            NativeCounter = () => TensorBytes.CreatedOnThisThread,
            NativeBound = native,
        }.Run();
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public void TorchCheckpoint_MutantsLoadOrAreRefused()
    {
        using var dir = new TempDirectory();
        WeightsReference.Run(TorchCheckpointTests.MakeCheckpoints, dir.Path);
        var seeds = new[] { "plain.pth", "protocol4.pth", "wrapped.pth" }.Select(f => File.ReadAllBytes(dir.File(f))).ToList();
        // Tensors: storages are at most the entry's bytes (a stored entry; deflate at most 1032:1), plus views that broadcast a
        // storage, which the reader allows up to 2^24 elements.
        Fuzz("pth", seeds, 8000, managed: n => 64 * n + Slack, native: n => 1032 * n + (8L << 24));
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public void SafeTensors_MutantsLoadOrAreRefused()
    {
        using var dir = new TempDirectory();
        torch.random.manual_seed(3);
        var seeds = new List<byte[]>();
        using (var tensors = new StateDict())
        {
            tensors.Add("conv.weight", torch.randn(4, 3, 3, 3));
            tensors.Add("bn.num_batches_tracked", torch.tensor(7L));
            tensors.Add("half", torch.randn(5).to(torch.ScalarType.Float16));
            tensors.Add("flags", torch.tensor(new[] { true, false }));
            tensors.Add("empty", torch.zeros(0, 3));
            SafeTensors.Write(dir.File("a.safetensors"), tensors, new Dictionary<string, string> { ["architecture"] = "resnet18" });
            seeds.Add(File.ReadAllBytes(dir.File("a.safetensors")));
        }
        // The reference writer's layout too (Python's own safetensors serialisation, spaces padding the header).
        WeightsReference.Run("""
            st_write(sys.argv[1], {"w": torch.arange(12, dtype=torch.float32).reshape(3, 4), "i": torch.tensor([1, -2], dtype=torch.int64)}, {"k": "v"})
            """, dir.File("b.safetensors"));
        seeds.Add(File.ReadAllBytes(dir.File("b.safetensors")));
        // Tensor bytes are exactly the data section, which the file holds.
        Fuzz("safetensors", seeds, 8000, managed: n => 16 * n + Slack, native: n => n);
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public void Onnx_MutantsLoadOrAreRefused()
    {
        using var dir = new TempDirectory();
        OnnxReference.Run(OnnxFileTests.AllTypesScript, dir.File("types.onnx"));
        var seeds = new List<byte[]> { File.ReadAllBytes(dir.File("types.onnx")) };
        // raw_data is at most the file; a typed field's varints are at least one byte per value of at most 8 bytes.
        Fuzz("onnx", seeds, 8000, managed: n => 64 * n + Slack, native: n => 8 * n);
    }

    // ---- Regression tests: inputs that crashed, hung or over-allocated before the fixes ----

    /// <summary>The inputs saved under Fuzzing/Regressions (named <c>format-what.bin</c>): each is refused with the documented exception.</summary>
    [TestMethod]
    public void SavedFindings_AreRefusedWithTheDocumentedException()
    {
        TorchRuntime.EnsureLoaded();
        var files = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Fuzzing", "Regressions"), "*.bin");
        Assert.IsNotEmpty(files);
        foreach (string file in files)
        {
            var inspect = Assert.ThrowsExactly<WeightFileException>(() => WeightFile.Inspect(file), Path.GetFileName(file));
            StringAssert.Contains(inspect.Message, file);
            Assert.ThrowsExactly<WeightFileException>(() => WeightFile.Load(file), Path.GetFileName(file));
        }
    }

    /// <summary>A pickle whose list contains itself (4 opcodes) sent the inert-value search into unbounded recursion: a stack overflow that killed the process.</summary>
    [TestMethod]
    public void Checkpoint_ASelfContainingListIsNoStateDictNotAStackOverflow()
    {
        var pickle = new PickleBytes().Proto().EmptyDict().Unicode("a").EmptyList().Put(0).Get(0).Op('a').Op('s').Op('.');
        using var dir = new TempDirectory();
        string path = WriteCheckpoint(dir, pickle.ToArray(), storage: null);
        var error = Assert.ThrowsExactly<WeightFileException>(() => WeightFile.Load(path));
        StringAssert.Contains(error.Message, "holds no tensors");
    }

    /// <summary>
    /// 60 levels of <c>(t, t)</c> (DUP, TUPLE2: two bytes a level) describe 2^60 leaves; hashing the tuple as a dict key and
    /// describing it in the error message walked all of them (a hang).
    /// </summary>
    [TestMethod]
    [Timeout(10_000, CooperativeCancellation = true)]
    public void Checkpoint_ADeeplySharedTupleIsHashedAndDescribedWithoutWalkingIt()
    {
        var pickle = new PickleBytes().Proto().EmptyDict().Op('K').Op(1).Op('K').Op(1).Op(0x86);
        for (int i = 0; i < 60; i++) pickle.Op('2').Op(0x86);
        // the same tree built again is the same key: interned tuples keep Python's equality
        pickle.Op('K').Op(1).Op('s').Op('K').Op(1).Op('K').Op(1).Op(0x86);
        for (int i = 0; i < 60; i++) pickle.Op('2').Op(0x86);
        pickle.Op('K').Op(2).Op('s').Op('.');
        using var dir = new TempDirectory();
        string path = WriteCheckpoint(dir, pickle.ToArray(), storage: null);
        var error = Assert.ThrowsExactly<WeightFileException>(() => WeightFile.Load(path));
        StringAssert.Contains(error.Message, "holds no tensors");
        StringAssert.Contains(error.Message, "(((…), (…)), ((…), (…)))", "one key, described three levels deep");
    }

    /// <summary>A pickle claiming a 10 GB storage over a 16-byte zip entry must be refused before the tensor is created.</summary>
    [TestMethod]
    public void Checkpoint_AStorageClaimOf10GbIsRefusedBeforeAllocating()
    {
        TorchRuntime.EnsureLoaded();
        const long numel = 10_000_000_000 / 4;
        using var dir = new TempDirectory();
        string path = WriteCheckpoint(dir, TensorPickle(numel, numel), storage: new byte[16]);
        long before = TensorBytes.CreatedOnThisThread, managed = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.ThrowsExactly<WeightFileException>(() => WeightFile.Load(path));
        StringAssert.Contains(error.Message, "'w'");
        StringAssert.Contains(error.Message, "holds 16 bytes");
        Assert.AreEqual(0, TensorBytes.CreatedOnThisThread - before, "no tensor is created");
        Assert.IsLessThan(Slack, GC.GetAllocatedBytesForCurrentThread() - managed);
    }

    /// <summary>numel × 8 overflowing to a small number made the storage check pass and libtorch fail on the allocation.</summary>
    [TestMethod]
    public void Checkpoint_AnElementCountWhoseByteSizeOverflowsIsRefused()
    {
        TorchRuntime.EnsureLoaded();
        const long numel = (1L << 61) + 2; // × 8 bytes wraps around to 16
        using var dir = new TempDirectory();
        string path = WriteCheckpoint(dir, TensorPickle(numel, 2, storageType: "DoubleStorage"), storage: new byte[16]);
        long before = TensorBytes.CreatedOnThisThread;
        Assert.ThrowsExactly<WeightFileException>(() => WeightFile.Load(path));
        Assert.AreEqual(0, TensorBytes.CreatedOnThisThread - before);
    }

    /// <summary>A zip whose central directory claims a 4 GB data.pkl (stored in a few bytes) was allocated before reading.</summary>
    [TestMethod]
    public void Checkpoint_AZipEntryClaimingMoreThanItCanHoldIsRefusedBeforeAllocating()
    {
        using var dir = new TempDirectory();
        string path = WriteCheckpoint(dir, new PickleBytes().Proto().EmptyDict().Op('.').ToArray(), storage: null);
        byte[] bytes = File.ReadAllBytes(path);
        // Central directory header of archive/data.pkl: signature PK\1\2, uncompressed size at offset 24.
        int central = IndexOf(bytes, [0x50, 0x4b, 0x01, 0x02]);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(central + 24), 0xFFFF_FF00);
        File.WriteAllBytes(path, bytes);
        long managed = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.ThrowsExactly<WeightFileException>(() => WeightFile.Load(path));
        StringAssert.Contains(error.Message, "data.pkl");
        Assert.IsLessThan(Slack, GC.GetAllocatedBytesForCurrentThread() - managed);
    }

    /// <summary>An ONNX shape whose numel × 4 wraps around to the raw_data length passed the check and reached libtorch.</summary>
    [TestMethod]
    public void Onnx_AShapeWhoseByteSizeOverflowsIsRefused()
    {
        TorchRuntime.EnsureLoaded();
        var model = new ModelProto
        {
            IrVersion = 8,
            Graph = new GraphProto
            {
                Name = "g",
                Output = { new ValueInfoProto { Name = "y" } },
                Initializer = { new TensorProto { Name = "w", DataType = 1, Dims = { (1L << 62) + 1 }, RawData = ByteString.CopyFrom(new byte[4]) } },
            },
            OpsetImport = { new OperatorSetIdProto { Version = 13 } },
        };
        using var dir = new TempDirectory();
        string path = dir.File("overflow.onnx");
        File.WriteAllBytes(path, model.ToByteArray());
        long before = TensorBytes.CreatedOnThisThread;
        var error = Assert.ThrowsExactly<WeightFileException>(() => WeightFile.Load(path));
        Assert.AreEqual("w", error.TensorName);
        Assert.AreEqual(0, TensorBytes.CreatedOnThisThread - before);
    }

    /// <summary>A safetensors header claiming a 10 GB tensor over a short file is refused from the header alone.</summary>
    [TestMethod]
    public void SafeTensors_A10GbClaimIsRefusedBeforeAllocating()
    {
        TorchRuntime.EnsureLoaded();
        byte[] header = Encoding.UTF8.GetBytes("""{"w":{"dtype":"F32","shape":[2500000000],"data_offsets":[0,10000000000]}}""");
        var bytes = new byte[8 + header.Length + 64];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        using var dir = new TempDirectory();
        string path = dir.File("claim.safetensors");
        File.WriteAllBytes(path, bytes);
        long before = TensorBytes.CreatedOnThisThread;
        var error = Assert.ThrowsExactly<WeightFileException>(() => WeightFile.Load(path));
        Assert.AreEqual("w", error.TensorName);
        Assert.AreEqual(0, TensorBytes.CreatedOnThisThread - before);
    }

    // ---- Hand-made checkpoints ----

    private static byte[] TensorPickle(long storageNumel, long size, string storageType = "FloatStorage")
    {
        // {'w': _rebuild_tensor_v2(persistent(('storage', torch.<type>, '0', 'cpu', numel)), 0, (size,), (1,), False, {})}
        return new PickleBytes().Proto().EmptyDict().Unicode("w")
            .Global("torch._utils", "_rebuild_tensor_v2")
            .Op('(').Op('(').Unicode("storage").Global("torch", storageType).Unicode("0").Unicode("cpu").Long(storageNumel).Op('t').Op('Q')
            .Long(0).Op('(').Long(size).Op('t').Op('(').Long(1).Op('t').Op(0x89).Op('}').Op('t').Op('R')
            .Op('s').Op('.').ToArray();
    }

    private static string WriteCheckpoint(TempDirectory dir, byte[] pickle, byte[]? storage)
    {
        string path = dir.File("checkpoint.pth");
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
        {
            using (var stream = zip.CreateEntry("archive/data.pkl", CompressionLevel.NoCompression).Open()) stream.Write(pickle);
            if (storage is not null)
                using (var stream = zip.CreateEntry("archive/data/0", CompressionLevel.NoCompression).Open()) stream.Write(storage);
        }
        return path;
    }

    private static int IndexOf(byte[] data, byte[] pattern) => data.AsSpan().IndexOf(pattern);

    /// <summary>Writes pickle opcodes by hand (protocol 2).</summary>
    private sealed class PickleBytes
    {
        private readonly List<byte> _bytes = new();

        public PickleBytes Op(char opcode) => Op((byte)opcode);

        public PickleBytes Op(byte opcode)
        {
            _bytes.Add(opcode);
            return this;
        }

        public PickleBytes Proto() => Op(0x80).Op(2);

        public PickleBytes EmptyDict() => Op('}');

        public PickleBytes EmptyList() => Op(']');

        public PickleBytes Put(byte index) => Op('q').Op(index);

        public PickleBytes Get(byte index) => Op('h').Op(index);

        public PickleBytes Unicode(string text)
        {
            byte[] utf8 = Encoding.UTF8.GetBytes(text);
            Op('X');
            Span<byte> length = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(length, utf8.Length);
            _bytes.AddRange(length.ToArray());
            _bytes.AddRange(utf8);
            return this;
        }

        public PickleBytes Global(string module, string name)
        {
            Op('c');
            _bytes.AddRange(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));
            return this;
        }

        public PickleBytes Long(long value) // LONG1 with 8 bytes
        {
            Op(0x8a).Op(8);
            Span<byte> bytes = stackalloc byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(bytes, value);
            _bytes.AddRange(bytes.ToArray());
            return this;
        }

        public byte[] ToArray() => _bytes.ToArray();
    }
}
