using System.Globalization;
using System.Text.Json;
using Cnn.Tests.Shared;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Weights;

/// <summary>Python helpers (hand-rolled safetensors, JSON dumps of tensor values) and C# comparisons for the weight tests.</summary>
internal static class WeightsReference
{
    /// <summary>Prepended to every reference script: safetensors without the safetensors package, and exact JSON dumps.</summary>
    public const string Prelude = """
        import json, math, struct, sys
        import numpy as np
        import torch

        ST_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
                    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}
        ST_TYPES = {v: k for k, v in ST_NAMES.items()}

        def raw_bytes(t):
            t = t.detach().contiguous().cpu()
            if t.dtype == torch.bfloat16:
                t = t.view(torch.int16)
            return t.numpy().tobytes()

        def st_write(path, tensors, metadata=None):
            header, offset, blobs = {}, 0, []
            if metadata:
                header["__metadata__"] = metadata
            for name, t in tensors.items():
                b = raw_bytes(t)
                header[name] = {"dtype": ST_NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
                offset += len(b)
                blobs.append(b)
            h = json.dumps(header).encode("utf-8")
            h += b" " * ((8 - len(h) % 8) % 8)
            with open(path, "wb") as f:
                f.write(struct.pack("<Q", len(h)))
                f.write(h)
                for b in blobs:
                    f.write(b)

        def st_read(path):
            with open(path, "rb") as f:
                data = f.read()
            (n,) = struct.unpack("<Q", data[:8])
            header = json.loads(data[8:8 + n].decode("utf-8"))
            meta = header.pop("__metadata__", {})
            out = {}
            for name, e in header.items():
                b, end = e["data_offsets"]
                chunk = bytearray(data[8 + n + b: 8 + n + end])
                dt = ST_TYPES[e["dtype"]]
                if dt == torch.bfloat16:
                    t = torch.from_numpy(np.frombuffer(chunk, dtype=np.int16).copy()).view(torch.bfloat16)
                else:
                    t = torch.from_numpy(np.frombuffer(chunk, dtype=torch.empty(0, dtype=dt).numpy().dtype).copy())
                out[name] = t.reshape(e["shape"])
            return out, meta

        def dump(tensors):
            # Exact values: every float is a float64 that round-trips through repr; ints and bools as ints.
            out = {}
            for name, t in tensors.items():
                t = t.detach().cpu()
                values = t.to(torch.float64).flatten().tolist() if t.is_floating_point() else t.to(torch.int64).flatten().tolist()
                out[name] = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "values": values}
            return json.dumps(out)

        """;

    public static string Run(string script, params string[] arguments) => ReferencePython.Run(Prelude + script, arguments);

    public sealed record Expected(string DType, long[] Shape, double[] Values);

    public static Dictionary<string, Expected> ParseDump(string json)
    {
        var result = new Dictionary<string, Expected>(StringComparer.Ordinal);
        using var document = JsonDocument.Parse(json);
        foreach (var property in document.RootElement.EnumerateObject())
        {
            var e = property.Value;
            result[property.Name] = new Expected(
                e.GetProperty("dtype").GetString()!,
                e.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).ToArray(),
                e.GetProperty("values").EnumerateArray().Select(x => x.GetDouble()).ToArray());
        }
        return result;
    }

    /// <summary>Asserts the tensor has exactly the dtype, shape and values Python dumped.</summary>
    public static void AssertMatches(Expected expected, Tensor actual, string name)
    {
        Assert.AreEqual(expected.DType, Cnn.Backbones.Weights.DTypes.Name(actual.dtype), $"dtype of {name}");
        CollectionAssert.AreEqual(expected.Shape, actual.shape, $"shape of {name}");
        using var scope = torch.NewDisposeScope();
        var flat = actual.detach().cpu().to(ScalarType.Float64).reshape(-1).contiguous();
        double[] values = flat.numel() == 0 ? Array.Empty<double>() : flat.data<double>().ToArray();
        Assert.AreEqual(expected.Values.Length, values.Length, $"element count of {name}");
        for (int i = 0; i < values.Length; i++)
            if (BitConverter.DoubleToInt64Bits(values[i]) != BitConverter.DoubleToInt64Bits(expected.Values[i]) && values[i] != expected.Values[i])
                Assert.Fail($"{name}[{i}]: expected {expected.Values[i].ToString("R", CultureInfo.InvariantCulture)}, got {values[i].ToString("R", CultureInfo.InvariantCulture)}");
    }

    /// <summary>Asserts the state dict has exactly the names (in order) and values Python dumped.</summary>
    public static void AssertMatches(Dictionary<string, Expected> expected, IEnumerable<KeyValuePair<string, Tensor>> actual, IEnumerable<string>? expectedOrder = null, string context = "", bool ignoreOrder = false)
    {
        var list = actual.ToList();
        var expectedNames = (expectedOrder ?? expected.Keys).ToList();
        var actualNames = list.Select(kv => kv.Key).ToList();
        if (ignoreOrder)
        {
            expectedNames.Sort(StringComparer.Ordinal);
            actualNames.Sort(StringComparer.Ordinal);
        }
        CollectionAssert.AreEqual(expectedNames, actualNames, $"{context} tensor names{(ignoreOrder ? "" : " and order")}");
        foreach (var (name, tensor) in list) AssertMatches(expected[name], tensor, $"{context} {name}".Trim());
    }
}
