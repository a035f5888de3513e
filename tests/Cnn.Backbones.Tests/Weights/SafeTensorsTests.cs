using System.Buffers.Binary;
using System.Text;
using Cnn.Backbones.Native;
using Cnn.Backbones.Weights;
using Cnn.Tests.Shared;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Weights;

[TestClass]
public sealed class SafeTensorsTests
{
    // Every supported dtype, a scalar, an empty tensor and a non-contiguous source.
    private const string MakeTensors = """
        torch.manual_seed(7)
        tensors = {
            "conv.weight": torch.randn(4, 3, 3, 3),
            "half": torch.randn(5, 2).half(),
            "bf16": torch.randn(3, 7).bfloat16(),
            "double": torch.randn(6, dtype=torch.float64),
            "counter": torch.tensor(12345678901, dtype=torch.int64),
            "ints": torch.randint(-2**31, 2**31 - 1, (2, 3), dtype=torch.int32),
            "shorts": torch.randint(-2**15, 2**15 - 1, (4,), dtype=torch.int16),
            "bytes": torch.randint(-128, 127, (9,), dtype=torch.int8),
            "ubytes": torch.randint(0, 255, (3, 3), dtype=torch.uint8),
            "mask": torch.rand(2, 5) > 0.5,
            "empty": torch.zeros(0, 4),
            "transposed": torch.randn(3, 4).t(),
        }

        """;

    [TestInitialize]
    public void Init() => TorchRuntime.EnsureLoaded();

    [TestMethod]
    public void ReadsWhatPythonWrites_EveryDtypeExactly_WithMetadata()
    {
        using var dir = new TempDirectory();
        string file = dir.File("python.safetensors");
        string json = WeightsReference.Run(MakeTensors + """
            st_write(sys.argv[1], tensors, {"format": "pt", "note": "héllo"})
            print(dump(tensors))
            """, file);
        var expected = WeightsReference.ParseDump(json);

        using var weights = SafeTensors.Read(file);
        WeightsReference.AssertMatches(expected, weights);
        Assert.AreEqual("pt", weights.Metadata["format"]);
        Assert.AreEqual("héllo", weights.Metadata["note"]);

        var infos = SafeTensors.Inspect(file);
        CollectionAssert.AreEqual(expected.Keys.ToList(), infos.Select(i => i.Name).ToList());
        foreach (var info in infos)
        {
            CollectionAssert.AreEqual(expected[info.Name].Shape, info.Shape.ToArray(), info.Name);
            Assert.AreEqual(expected[info.Name].DType, info.DTypeName, info.Name);
        }
        // WeightFile dispatches a safetensors file by content, whatever its extension.
        string renamed = dir.File("weights.pth.bin");
        File.Copy(file, renamed);
        Assert.AreEqual(WeightFile.Format.SafeTensors, WeightFile.Detect(renamed));
        using var again = WeightFile.Load(renamed);
        WeightsReference.AssertMatches(expected, again);
    }

    /// <summary>
    /// A safetensors header of 640, 896, 1152 or 1408 bytes makes the file begin 0x80 0x02..0x05, as a pickle's PROTO opcode does;
    /// such a file is still read as safetensors (a parity fixture of clip_vit_b16 once had one).
    /// </summary>
    [TestMethod]
    [DataRow(640)]
    [DataRow(896)]
    [DataRow(1152)]
    [DataRow(1408)]
    public void AHeaderLengthThatLooksLikeAPickleProtocolIsStillSafeTensors(int headerLength)
    {
        TorchRuntime.EnsureLoaded();
        using var dir = new TempDirectory();
        string file = dir.File("padded.safetensors");
        var values = new float[] { 1.5f, -2.25f, 3f };
        string json = """{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}""";
        var header = Encoding.UTF8.GetBytes(json.PadRight(headerLength));
        using (var stream = File.Create(file))
        {
            var length = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            stream.Write(length);
            stream.Write(header);
            stream.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        }
        Assert.AreEqual(0x80, File.ReadAllBytes(file)[0]);
        Assert.AreEqual(WeightFile.Format.SafeTensors, WeightFile.Detect(file));
        using var weights = WeightFile.Load(file);
        CollectionAssert.AreEqual(values, weights["x"].data<float>().ToArray());
    }

    [TestMethod]
    public void PythonReadsWhatCSharpWrites()
    {
        using var dir = new TempDirectory();
        string source = dir.File("source.safetensors");
        string written = dir.File("csharp.safetensors");
        WeightsReference.Run(MakeTensors + "st_write(sys.argv[1], tensors)\n", source);
        using (var weights = SafeTensors.Read(source))
        {
            // Write from tensors that are not contiguous and not in the file's order to exercise the writer.
            var reordered = weights.Reverse().Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.dim() == 2 && kv.Value.dtype == ScalarType.Float32 ? kv.Value.t().t() : kv.Value)).ToList();
            SafeTensors.Write(written, reordered, new Dictionary<string, string> { ["framework"] = "TorchSharp" });
        }
        Assert.AreEqual(0, new FileInfo(written).Length < 8 ? 1 : BinaryPrimitives.ReadInt64LittleEndian(File.ReadAllBytes(written).AsSpan(0, 8)) % 8, "data section is 8-byte aligned");

        string verdict = WeightsReference.Run(MakeTensors + """
            got, meta = st_read(sys.argv[1])
            assert meta == {"framework": "TorchSharp"}, meta
            assert list(got) == list(reversed(list(tensors))), list(got)
            for name, t in tensors.items():
                g = got[name]
                assert g.dtype == t.dtype and g.shape == t.shape, (name, g.dtype, t.dtype, g.shape, t.shape)
                assert torch.equal(g, t), name
            print("ok", len(got))
            """, written);
        StringAssert.StartsWith(verdict, "ok 12");
    }

    [TestMethod]
    public void RoundTripsInCSharp_KeepingOrderAndMetadata()
    {
        using var dir = new TempDirectory();
        string file = dir.File("roundtrip.safetensors");
        using var original = new StateDict();
        torch.manual_seed(3);
        original.Add("z.last", torch.randn(3, 5));
        original.Add("a.first", torch.randn(2, 2).to(ScalarType.BFloat16));
        original.Add("m.steps", torch.tensor(42L));
        original.Add("flags", torch.tensor(new[] { true, false, true }));
        original.Metadata["epoch"] = "3";
        SafeTensors.Write(file, original);

        using var loaded = SafeTensors.Read(file);
        CollectionAssert.AreEqual(original.Keys.ToList(), loaded.Keys.ToList());
        foreach (var (name, tensor) in original)
        {
            Assert.AreEqual(tensor.dtype, loaded[name].dtype, name);
            Assert.IsTrue(tensor.eq(loaded[name]).all().item<bool>(), name);
        }
        Assert.AreEqual("3", loaded.Metadata["epoch"]);
        Assert.AreEqual(original.TotalParameters, loaded.TotalParameters);
    }

    [TestMethod]
    public void MissingFileNamesThePath()
    {
        string path = Path.Combine(Path.GetTempPath(), "cnn-no-such-" + Guid.NewGuid().ToString("N") + ".safetensors");
        var ex = Assert.ThrowsExactly<FileNotFoundException>(() => SafeTensors.Read(path));
        StringAssert.Contains(ex.Message, path);
        Assert.ThrowsExactly<FileNotFoundException>(() => WeightFile.Load(path));
    }

    // Damaged files: each must fail with a WeightFileException naming the file and saying what is wrong.
    [TestMethod]
    [DataRow("truncated", "truncated")]
    [DataRow("tiny", "fewer than the 8-byte header length")]
    [DataRow("header_too_long", "larger than the rest of the file")]
    [DataRow("huge_header", "limit")]
    [DataRow("overlap", "overlap")]
    [DataRow("past_end", "past the end of the data section")]
    [DataRow("size_mismatch", "needs 24 bytes but data_offsets [0, 20] hold 20")]
    [DataRow("bad_json", "not valid JSON")]
    [DataRow("unknown_dtype", "unknown or unsupported dtype 'F8_E4M3'")]
    [DataRow("reversed_offsets", "begin after they end")]
    [DataRow("negative_shape", "non-negative integers")]
    [DataRow("duplicate", "twice")]
    public void DamagedFilesFailWithClearErrors(string kind, string expectedText)
    {
        using var dir = new TempDirectory();
        string file = dir.File(kind + ".safetensors");
        byte[] data = Damaged(kind);
        File.WriteAllBytes(file, data);
        var ex = Assert.ThrowsExactly<WeightFileException>(() => { using var w = WeightFile.Load(file); });
        StringAssert.Contains(ex.Message, file);
        StringAssert.Contains(ex.Message, expectedText);
        Assert.IsFalse(ex.Message.Contains('\n'), "one-line message");
        if (kind is "overlap" or "past_end" or "size_mismatch" or "unknown_dtype" or "reversed_offsets")
        {
            Assert.IsNotNull(ex.TensorName);
            StringAssert.Contains(ex.Message, $"'{ex.TensorName}'");
        }
        // Inspect validates the same way.
        Assert.ThrowsExactly<WeightFileException>(() => WeightFile.Inspect(file));
    }

    private static byte[] Damaged(string kind)
    {
        string header = kind switch
        {
            "overlap" => """{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}""",
            "past_end" => """{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[16,32]}}""",
            "size_mismatch" => """{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}""",
            "bad_json" => """{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]""",
            "unknown_dtype" => """{"a":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}}""",
            "reversed_offsets" => """{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}""",
            "negative_shape" => """{"a":{"dtype":"F32","shape":[-1,4],"data_offsets":[0,16]}}""",
            "duplicate" => """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""",
            _ => """{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}""",
        };
        byte[] json = Encoding.UTF8.GetBytes(header);
        var data = new byte[8 + json.Length + 24];
        BinaryPrimitives.WriteUInt64LittleEndian(data, (ulong)json.Length);
        json.CopyTo(data, 8);
        return kind switch
        {
            "truncated" => data[..(data.Length - 5)],
            "tiny" => data[..5],
            "header_too_long" => SetLength(data, (ulong)data.Length),
            "huge_header" => SetLength(data, 1UL << 40),
            _ => data,
        };
    }

    private static byte[] SetLength(byte[] data, ulong length)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(data, length);
        return data;
    }
}
