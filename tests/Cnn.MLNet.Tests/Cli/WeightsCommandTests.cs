using System.Globalization;
using System.Text.Json;
using Cnn.Cli;
using Cnn.Tests.Shared;

namespace Cnn.MLNet.Tests.Cli;

[TestClass]
public sealed class WeightsCommandTests
{
    // Writes a torch.save checkpoint and a hand-rolled safetensors file of the same state dict, and prints the expected listing.
    private const string MakeFiles = """
        import json, os, struct, sys
        import torch
        torch.manual_seed(0)
        m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Flatten(), torch.nn.Linear(8, 5))
        sd = m.state_dict()
        sd["extra.half"] = torch.randn(2, 3).half()
        torch.save(sd, os.path.join(sys.argv[1], "model.pth"))
        names = {torch.float32: "F32", torch.float16: "F16", torch.int64: "I64"}
        header, blobs, offset = {}, [], 0
        for k, v in sd.items():
            b = v.contiguous().numpy().tobytes()
            header[k] = {"dtype": names[v.dtype], "shape": list(v.shape), "data_offsets": [offset, offset + len(b)]}
            offset += len(b); blobs.append(b)
        h = json.dumps(header).encode()
        with open(os.path.join(sys.argv[1], "model.safetensors"), "wb") as f:
            f.write(struct.pack("<Q", len(h))); f.write(h); [f.write(b) for b in blobs]

        class Evil:
            def __reduce__(self):
                return (os.system, ("touch " + os.path.join(sys.argv[1], "pwned"),))
        torch.save({"w": torch.zeros(1), "x": Evil()}, os.path.join(sys.argv[1], "evil.pth"))

        print(json.dumps({
            "tensors": [{"name": k, "dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape), "numel": v.numel()} for k, v in sd.items()],
            "parameters": sum(p.numel() for p in m.parameters()) + sd["extra.half"].numel(),
            "buffers": sum(b.numel() for b in m.buffers()),
        }))
        """;

    private static TempDirectory? _dir;
    private static JsonDocument? _expected;

    [ClassInitialize]
    public static void MakeFixture(TestContext _)
    {
        _dir = new TempDirectory();
        _expected = JsonDocument.Parse(ReferencePython.Run(MakeFiles, _dir.Path));
    }

    [ClassCleanup]
    public static void RemoveFixture()
    {
        _expected?.Dispose();
        _dir?.Dispose();
    }

    private static (int Code, string Stdout, string Stderr) Cnn(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static JsonElement ExpectedTensors => _expected!.RootElement.GetProperty("tensors");

    private static long ExpectedParameters => _expected!.RootElement.GetProperty("parameters").GetInt64();

    private static long ExpectedBuffers => _expected!.RootElement.GetProperty("buffers").GetInt64();

    [TestMethod]
    [DataRow("model.pth", "pytorch")]
    [DataRow("model.safetensors", "safetensors")]
    public void JsonListsEveryTensorAndTheTotal(string file, string format)
    {
        var (code, stdout, stderr) = Cnn("weights", _dir!.File(file), "--json");
        Assert.AreEqual(0, code, stderr);
        Assert.AreEqual("", stderr);
        using var actual = JsonDocument.Parse(stdout);
        var root = actual.RootElement;
        Assert.AreEqual(format, root.GetProperty("format").GetString());
        Assert.AreEqual(ExpectedParameters, root.GetProperty("parameters").GetInt64(), "PyTorch's parameters()");
        Assert.AreEqual(ExpectedBuffers, root.GetProperty("buffers").GetInt64(), "PyTorch's buffers()");
        Assert.AreEqual(ExpectedTensors.GetArrayLength(), root.GetProperty("tensor_count").GetInt32());
        var expected = ExpectedTensors.EnumerateArray().ToList();
        var tensors = root.GetProperty("tensors").EnumerateArray().ToList();
        Assert.AreEqual(expected.Count, tensors.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            string name = expected[i].GetProperty("name").GetString()!;
            Assert.AreEqual(name, tensors[i].GetProperty("name").GetString());
            Assert.AreEqual(expected[i].GetProperty("dtype").GetString(), tensors[i].GetProperty("dtype").GetString(), name);
            Assert.AreEqual(expected[i].GetProperty("shape").GetRawText().Replace(" ", ""), tensors[i].GetProperty("shape").GetRawText().Replace(" ", "").Replace("\n", "").Replace("\r", ""), name);
            Assert.AreEqual(expected[i].GetProperty("numel").GetInt64(), tensors[i].GetProperty("numel").GetInt64(), name);
        }
    }

    [TestMethod]
    public void TablePrintsARowPerTensorAndATotalLine()
    {
        var (code, stdout, stderr) = Cnn("weights", _dir!.File("model.pth"));
        Assert.AreEqual(0, code, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToList();
        var expected = ExpectedTensors.EnumerateArray().ToList();
        Assert.AreEqual(expected.Count + 2, lines.Count, stdout); // header + rows + total
        StringAssert.StartsWith(lines[0], "name");
        for (int i = 0; i < expected.Count; i++)
        {
            var columns = lines[i + 1].Split("  ", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            string shape = "[" + string.Join(", ", expected[i].GetProperty("shape").EnumerateArray().Select(d => d.GetInt64())) + "]";
            CollectionAssert.AreEqual(new[]
            {
                expected[i].GetProperty("name").GetString(), expected[i].GetProperty("dtype").GetString(), shape,
                expected[i].GetProperty("numel").GetInt64().ToString("N0", CultureInfo.InvariantCulture),
            }, columns, lines[i + 1]);
        }
        StringAssert.StartsWith(lines[^1], string.Create(CultureInfo.InvariantCulture, $"{expected.Count:N0} tensors, {ExpectedParameters:N0} parameters, {ExpectedBuffers:N0} buffers"));
    }

    [TestMethod]
    public void MaliciousCheckpointIsRefusedOnOneLineWithoutRunningIt()
    {
        var (code, stdout, stderr) = Cnn("weights", _dir!.File("evil.pth"));
        Assert.AreEqual(1, code);
        Assert.AreEqual("", stdout);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.AreEqual(1, lines.Length, stderr);
        StringAssert.StartsWith(lines[0], "cnn weights: error: refused to load 'evil.pth'");
        StringAssert.Contains(lines[0], "'posix.system'");
        Assert.IsFalse(File.Exists(_dir.File("pwned")));
    }

    [TestMethod]
    public void MissingOrDamagedFileIsOneClearLine()
    {
        string missing = _dir!.File("nope.safetensors");
        var (code, stdout, stderr) = Cnn("weights", missing);
        Assert.AreEqual(1, code);
        Assert.AreEqual("", stdout);
        Assert.AreEqual(1, stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length, stderr);
        StringAssert.Contains(stderr, missing);

        string damaged = _dir.File("damaged.safetensors");
        File.WriteAllBytes(damaged, File.ReadAllBytes(_dir.File("model.safetensors"))[..100]);
        (code, _, stderr) = Cnn("weights", damaged, "--json");
        Assert.AreEqual(1, code);
        Assert.AreEqual(1, stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length, stderr);
        StringAssert.Contains(stderr, damaged);
        Assert.IsFalse(stderr.Contains("   at "), "no stack trace");
    }

    [TestMethod]
    public void UsageErrors()
    {
        Assert.AreEqual(2, Cnn("weights").Code);
        Assert.AreEqual(2, Cnn("weights", "a", "b").Code);
        Assert.AreEqual(2, Cnn("weights", _dir!.File("model.pth"), "--bogus", "1").Code);
        var (code, stdout, _) = Cnn("help");
        Assert.AreEqual(0, code);
        StringAssert.Contains(stdout, "weights");
    }
}
