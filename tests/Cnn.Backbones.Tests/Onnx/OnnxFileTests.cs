using Cnn.Backbones.Onnx;
using Cnn.Backbones.Tests.Weights;
using Cnn.Backbones.Weights;
using Cnn.Tests.Shared;

namespace Cnn.Backbones.Tests.Onnx;

[TestClass]
public sealed class OnnxFileTests
{
    // One initializer of every supported type, once as raw_data (numpy_helper.from_array) and once in the typed field
    // (helper.make_tensor(raw=False)); BFLOAT16 has no numpy type, so its bits are written by hand in both forms.
    internal const string AllTypesScript = """
        import numpy as np
        path = sys.argv[1]
        rng = np.random.default_rng(3)
        arrays = {
            "f32": rng.standard_normal((2, 3)).astype(np.float32),
            "f16": rng.standard_normal((4,)).astype(np.float16),
            "f64": rng.standard_normal((3, 1)).astype(np.float64),
            "i64": np.array([-(2**40), 0, 2**40 + 1], dtype=np.int64),
            "i32": np.array([[-7, 8], [2**30, -(2**31)]], dtype=np.int32),
            "i16": np.array([-32768, 5, 32767], dtype=np.int16),
            "i8": np.array([-128, 0, 127], dtype=np.int8),
            "u8": np.array([0, 1, 255], dtype=np.uint8),
            "bool": np.array([True, False, True]),
            "scalar": np.array(2.5, dtype=np.float32),
            "empty": np.zeros((0, 3), dtype=np.float32),
        }
        inits, expected = [], {}
        for name, a in arrays.items():
            inits.append(numpy_helper.from_array(a, name + "_raw"))
            code = helper.np_dtype_to_tensor_dtype(a.dtype) if hasattr(helper, "np_dtype_to_tensor_dtype") else onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[a.dtype]
            vals = a.view(np.uint16).flatten().tolist() if a.dtype == np.float16 else a.flatten().tolist()
            t = helper.make_tensor(name + "_typed", code, a.shape, vals, raw=False)
            if a.dtype == np.float16:
                t.ClearField("int32_data"); t.int32_data.extend(a.view(np.uint16).flatten().tolist())
            inits.append(t)
            expected[name + "_raw"] = expected[name + "_typed"] = torch.from_numpy(a.copy())
        bf = torch.tensor([1.5, -2.0, 3.140625], dtype=torch.bfloat16)
        bits = bf.view(torch.int16).numpy().view(np.uint16)
        raw = TensorProto(name="bf16_raw", data_type=TensorProto.BFLOAT16, dims=[3], raw_data=bits.tobytes())
        typed = TensorProto(name="bf16_typed", data_type=TensorProto.BFLOAT16, dims=[3]); typed.int32_data.extend(bits.tolist())
        inits += [raw, typed]
        expected["bf16_raw"] = expected["bf16_typed"] = bf
        save_model(path, inits)
        # onnx's own reader agrees with the values dumped for the comparison.
        m = onnx.load(path)
        for t in m.graph.initializer:
            if t.data_type != TensorProto.BFLOAT16:
                assert np.array_equal(numpy_helper.to_array(t), expected[t.name].numpy()), t.name
        onnx.checker.check_model(m)
        print(dump(expected))
        """;

    [TestMethod]
    public void Load_ReadsEveryTypeFromRawAndTypedFields()
    {
        using var dir = new TempDirectory();
        string path = dir.File("types.onnx");
        var expected = WeightsReference.ParseDump(OnnxReference.Run(AllTypesScript, path));

        Assert.AreEqual(WeightFile.Format.Onnx, WeightFile.Detect(path));
        using var weights = WeightFile.Load(path);
        WeightsReference.AssertMatches(expected, weights, context: "onnx", ignoreOrder: true);
        Assert.AreEqual("cnn-tests", weights.Metadata["onnx.producer"]);

        var listed = WeightFile.Inspect(path);
        CollectionAssert.AreEqual(weights.Keys.ToList(), listed.Select(t => t.Name).ToList());
        foreach (var info in listed)
            CollectionAssert.AreEqual(weights[info.Name].shape, info.Shape.ToArray(), info.Name);
    }

    [TestMethod]
    public void Detect_UsesContentNotExtension()
    {
        using var dir = new TempDirectory();
        string onnx = dir.File("weights.bin");
        OnnxReference.Run("save_model(sys.argv[1], [numpy_helper.from_array(np.ones((2, 2), np.float32), 'w')])\n", onnx);
        Assert.AreEqual(WeightFile.Format.Onnx, WeightFile.Detect(onnx));

        string st = dir.File("model.onnx");
        SafeTensors.Write(st, new[] { KeyValuePair.Create("w", TorchSharp.torch.ones(2)) });
        Assert.AreEqual(WeightFile.Format.SafeTensors, WeightFile.Detect(st), "a safetensors file named .onnx is still safetensors");
    }

    private const string BadFilesScript = """
        import numpy as np
        out = sys.argv[1]
        good = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "conv.weight")
        save_model(out + "/good.onnx", [good])
        short_raw = TensorProto(name="short.raw", data_type=TensorProto.FLOAT, dims=[2, 3], raw_data=np.zeros(5, np.float32).tobytes())
        save_model(out + "/wrong_raw.onnx", [short_raw])
        short_typed = TensorProto(name="short.typed", data_type=TensorProto.INT64, dims=[4]); short_typed.int64_data.extend([1, 2, 3])
        save_model(out + "/wrong_typed.onnx", [short_typed])
        ext = TensorProto(name="ext.weight", data_type=TensorProto.FLOAT, dims=[2], data_location=TensorProto.EXTERNAL)
        e = ext.external_data.add(); e.key = "location"; e.value = "weights.data"
        save_model(out + "/external.onnx", [ext])
        save_model(out + "/uint16.onnx", [numpy_helper.from_array(np.array([1, 2], np.uint16), "u16.weight")])
        save_model(out + "/string.onnx", [helper.make_tensor("names", TensorProto.STRING, [1], [b"a"])])
        both = numpy_helper.from_array(np.ones(2, np.float32), "both.weight"); both.float_data.extend([1.0, 1.0])
        save_model(out + "/both.onnx", [both])
        range8 = TensorProto(name="i8.weight", data_type=TensorProto.INT8, dims=[2]); range8.int32_data.extend([1, 300])
        save_model(out + "/range.onnx", [range8])
        """;

    [TestMethod]
    public void Load_RefusesDamagedOrUnsupportedFiles_NamingFileAndTensor()
    {
        using var dir = new TempDirectory();
        OnnxReference.Run(BadFilesScript, dir.Path);

        void Refused(string file, string? tensor, params string[] fragments)
        {
            string path = dir.File(file);
            var ex = Assert.ThrowsExactly<WeightFileException>(() => WeightFile.Load(path).Dispose(), file);
            StringAssert.Contains(ex.Message, path, file);
            Assert.AreEqual(tensor, ex.TensorName, file);
            foreach (var fragment in fragments) StringAssert.Contains(ex.Message, fragment, file);
            Assert.ThrowsExactly<WeightFileException>(() => WeightFile.Inspect(path), file);
        }

        Refused("wrong_raw.onnx", "short.raw", "raw_data has 20 bytes", "needs 6 × 4 = 24");
        Refused("wrong_typed.onnx", "short.typed", "int64_data has 3 values", "needs 4");
        Refused("external.onnx", "ext.weight", "external data in 'weights.data'", "save_as_external_data=False");
        Refused("uint16.onnx", "u16.weight", "UINT16 (4) is not supported");
        Refused("string.onnx", "names", "STRING (8) is not supported");
        Refused("both.onnx", "both.weight", "both raw_data and float_data");

        var range = Assert.ThrowsExactly<WeightFileException>(() => WeightFile.Load(dir.File("range.onnx")).Dispose());
        StringAssert.Contains(range.Message, "int32_data[1] = 300 is out of range for int8");

        // Truncated: cut inside the initializer's bytes, and cut cleanly after the graph's initializer list.
        byte[] good = File.ReadAllBytes(dir.File("good.onnx"));
        using (var weights = WeightFile.Load(dir.File("good.onnx"))) Assert.AreEqual(6, (int)weights["conv.weight"].numel());
        for (int cut = 8; cut < good.Length; cut += Math.Max(1, good.Length / 23))
        {
            string path = dir.File($"cut{cut}.onnx");
            File.WriteAllBytes(path, good[..cut]);
            var ex = Assert.Throws<WeightFileException>(() => WeightFile.Load(path).Dispose(), $"cut at {cut} of {good.Length}");
            StringAssert.Contains(ex.Message, path);
        }
    }
}
