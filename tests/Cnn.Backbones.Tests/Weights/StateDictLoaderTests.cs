using Cnn.Backbones.Compute;
using Cnn.Backbones.Native;
using Cnn.Backbones.Weights;
using Cnn.Tests.Shared;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Weights;

[TestClass]
public sealed class StateDictLoaderTests
{
    private const string MakeTiny = """
        import os
        torch.manual_seed(5)
        class Tiny(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv2d(3, 4, 3)
                self.bn = torch.nn.BatchNorm2d(4)
                self.fc = torch.nn.Linear(4, 2)
                self.register_buffer("steps", torch.tensor([3, -7, 2**40], dtype=torch.int64))
        m = Tiny()
        with torch.no_grad():
            for _ in range(3):
                m.bn(m.conv(torch.randn(2, 3, 5, 5)))
        sd = m.state_dict()
        torch.save(sd, os.path.join(sys.argv[1], "tiny.pth"))
        half = {k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}
        st_write(os.path.join(sys.argv[1], "tiny_half.safetensors"), half)
        print(json.dumps({"float": json.loads(dump(sd)),
                          "half_as_float": json.loads(dump({k: (v.float() if v.is_floating_point() else v) for k, v in half.items()}))}))
        """;

    private sealed class Tiny : nn.Module<Tensor, Tensor>
    {
        public readonly Conv2d conv = nn.Conv2d(3, 4, 3);
        public readonly FoldableBatchNorm2d bn = Ops.BatchNorm2d(4);
        public readonly Linear fc = nn.Linear(4, 2);

        public Tiny() : base(nameof(Tiny))
        {
            register_buffer("steps", torch.zeros(3, ScalarType.Int64));
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => fc.forward(bn.forward(conv.forward(x)).mean(new long[] { 2, 3 }));
    }

    private static TempDirectory? _fixture;
    private static Dictionary<string, WeightsReference.Expected>? _float;
    private static Dictionary<string, WeightsReference.Expected>? _halfAsFloat;

    [ClassInitialize]
    public static void MakeFixture(TestContext _)
    {
        _fixture = new TempDirectory();
        using var json = System.Text.Json.JsonDocument.Parse(WeightsReference.Run(MakeTiny, _fixture.Path));
        _float = WeightsReference.ParseDump(json.RootElement.GetProperty("float").GetRawText());
        _halfAsFloat = WeightsReference.ParseDump(json.RootElement.GetProperty("half_as_float").GetRawText());
    }

    [ClassCleanup]
    public static void RemoveFixture() => _fixture?.Dispose();

    [TestInitialize]
    public void Init() => TorchRuntime.EnsureLoaded();

    [TestMethod]
    public void StrictLoadCopiesParametersAndBuffersIncludingBatchNormStatistics()
    {
        using var model = new Tiny();
        using var weights = WeightFile.Load(_fixture!.File("tiny.pth"));
        var report = StateDictLoader.Load(model, weights);

        Assert.IsTrue(report.IsComplete, report.ToString());
        Assert.AreEqual(_float!.Count, report.Loaded);
        CollectionAssert.Contains(model.state_dict().Keys.ToList(), "bn.num_batches_tracked");
        WeightsReference.AssertMatches(_float, model.state_dict(), context: "module after load", ignoreOrder: true);
        Assert.IsTrue(model.conv.weight!.requires_grad, "parameters stay trainable");
        StringAssert.StartsWith(report.ToString(), $"loaded {_float.Count} tensors; 0 missing, 0 unexpected, 0 shape mismatches");
    }

    [TestMethod]
    public void Float16FileIsConvertedIntoAFloat32Model()
    {
        using var model = new Tiny();
        using var weights = WeightFile.Load(_fixture!.File("tiny_half.safetensors"));
        Assert.AreEqual(ScalarType.Float16, weights["conv.weight"].dtype);
        var report = StateDictLoader.Load(model, weights);
        Assert.IsTrue(report.IsComplete, report.ToString());
        WeightsReference.AssertMatches(_halfAsFloat!, model.state_dict(), context: "module after float16 load", ignoreOrder: true);
        Assert.AreEqual(ScalarType.Float32, model.conv.weight!.dtype);
    }

    [TestMethod]
    public void StrictFailureListsEveryProblemAndLeavesTheModuleUnchanged()
    {
        using var model = new Tiny();
        using var before = StateDict.FromModule(model);
        using var weights = MisfittingWeights();

        var ex = Assert.ThrowsExactly<WeightLoadException>(() => StateDictLoader.Load(model, weights));
        StringAssert.Contains(ex.Message, "missing from the file (1): fc.bias");
        StringAssert.Contains(ex.Message, "unexpected in the file (1): head.extra");
        StringAssert.Contains(ex.Message, "fc.weight: module [2, 4], file [3, 4]");
        StringAssert.Contains(ex.Message, "strict: false");
        Assert.IsFalse(ex.Message.Contains('\n'), "one-line message");
        Assert.AreEqual(0, ex.Report.Loaded);

        using var after = StateDict.FromModule(model);
        foreach (var (name, tensor) in before)
            Assert.IsTrue(tensor.equal(after[name]).all().item<bool>() && tensor.dtype == after[name].dtype, $"{name} must be unchanged");
    }

    [TestMethod]
    public void NonStrictLoadsWhatFitsAndReportsTheRest()
    {
        using var model = new Tiny();
        using var fcWeightBefore = model.fc.weight!.detach().clone();
        using var fcBiasBefore = model.fc.bias!.detach().clone();
        using var weights = MisfittingWeights();

        var report = StateDictLoader.Load(model, weights, strict: false);
        CollectionAssert.AreEqual(new[] { "fc.bias" }, report.MissingKeys.ToArray());
        CollectionAssert.AreEqual(new[] { "head.extra" }, report.UnexpectedKeys.ToArray());
        Assert.AreEqual(1, report.ShapeMismatches.Count);
        Assert.AreEqual("fc.weight", report.ShapeMismatches[0].Name);
        CollectionAssert.AreEqual(new long[] { 2, 4 }, report.ShapeMismatches[0].ExpectedShape.ToArray());
        CollectionAssert.AreEqual(new long[] { 3, 4 }, report.ShapeMismatches[0].FileShape.ToArray());
        Assert.AreEqual(_float!.Count - 2, report.Loaded);
        Assert.IsFalse(report.IsComplete);

        var loaded = _float.Where(kv => !kv.Key.StartsWith("fc.", StringComparison.Ordinal)).ToDictionary();
        var moduleState = model.state_dict().Where(kv => loaded.ContainsKey(kv.Key));
        WeightsReference.AssertMatches(loaded, moduleState, context: "loaded part", ignoreOrder: true);
        Assert.IsTrue(model.fc.weight!.equal(fcWeightBefore).all().item<bool>(), "mismatched weight keeps its value");
        Assert.IsTrue(model.fc.bias!.equal(fcBiasBefore).all().item<bool>(), "missing weight keeps its value");
    }

    /// <summary>The Python weights with fc.bias removed, fc.weight of the wrong shape and an extra entry.</summary>
    private static StateDict MisfittingWeights()
    {
        var weights = WeightFile.Load(_fixture!.File("tiny.pth"));
        weights.Remove("fc.bias");
        weights.Remove("fc.weight");
        weights.Add("fc.weight", torch.ones(3, 4));
        weights.Add("head.extra", torch.ones(1));
        return weights;
    }
}
