using System.Globalization;
using System.Text.Json;
using Cnn.Backbones.Native;
using Cnn.Backbones.Optimizers;
using Cnn.Tests.Shared;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Optimizers;

/// <summary>
/// Our optimizers' steps against PyTorch's <c>torch.optim</c> run at test time: two parameter groups with their own options (the
/// first with two parameters, one of them 4-D with a length that is no multiple of a vector width), a learning rate changed every
/// step, gradients from a shared formula. Each case runs twice: through libtorch's fused kernel (what CPU float32 training runs)
/// and through the per-tensor step (what other devices and types run).
/// </summary>
/// <remarks>
/// The fused kernel computes the same float32 arithmetic as PyTorch 1.13's per-tensor step in another order (e.g. <c>m + (1 − β₁)(g − m)</c>
/// for <c>β₁m + (1 − β₁)g</c>), so each step may differ by an ulp or so of the update; after six steps of size ≤ 0.03 that stays
/// far below the tolerance, 2e-6 + 2e-6·|p| (about 17 float32 ulps of |p| ≤ 1), which the per-tensor path also meets.
/// </remarks>
[TestClass]
public sealed class HeldScalarOptimizerTests
{
    private const int Steps = 6;
    private static readonly long[][] Shapes = [[3, 4], [5], [3, 2, 3, 3]];

    /// <summary>The parameters (indices into <see cref="Shapes"/>) of each group.</summary>
    private static readonly int[][] Members = [[0, 2], [1]];

    // The same cases, parameters and gradients in Python: the reference's final parameters per case.
    private const string Script = """
        import json, math, sys, torch
        shapes, members, steps = [[3, 4], [5], [3, 2, 3, 3]], [[0, 2], [1]], 6
        def values(k, n, t):
            return [math.sin(0.37 * i + 1.1 * t + k) for i in range(n)] if t >= 0 else [0.1 * (i % 7) - 0.3 + 0.05 * k for i in range(n)]
        def run(name, groups):
            params = [torch.nn.Parameter(torch.tensor(values(k, math.prod(s), -1), dtype=torch.float32).reshape(s)) for k, s in enumerate(shapes)]
            specs = [dict(g, params=[params[i] for i in members[k]]) for k, g in enumerate(groups)]
            opt = torch.optim.AdamW(specs) if name.startswith("adamw") else torch.optim.SGD(specs, lr=0.1)
            for t in range(steps):
                for k, g in enumerate(opt.param_groups):
                    g["lr"] = groups[k]["lr"] * (1 - 0.1 * t)
                opt.zero_grad()
                loss = sum((p * torch.tensor(values(k, p.numel(), t), dtype=torch.float32).reshape(p.shape)).sum() for k, p in enumerate(params))
                loss.backward()
                opt.step()
            return [p.detach().reshape(-1).tolist() for p in params]
        cases = json.loads(sys.argv[1])
        print(json.dumps({name: run(name, groups) for name, groups in cases.items()}))
        """;

    /// <summary>Per case: each group's PyTorch options (the learning rate is the one of step 0).</summary>
    private static readonly Dictionary<string, Dictionary<string, object>[]> Cases = new()
    {
        ["adamw"] = [new() { ["lr"] = 0.01, ["weight_decay"] = 0.05 }, new() { ["lr"] = 0.02, ["weight_decay"] = 0.0, ["betas"] = new[] { 0.8, 0.95 }, ["eps"] = 0.1 }],
        ["adamw-amsgrad-maximize"] = [new() { ["lr"] = 0.01, ["weight_decay"] = 0.1, ["amsgrad"] = true, ["maximize"] = true }, new() { ["lr"] = 0.03, ["amsgrad"] = true }],
        ["sgd"] = [new() { ["lr"] = 0.05, ["momentum"] = 0.9, ["dampening"] = 0.1, ["weight_decay"] = 1e-3 }, new() { ["lr"] = 0.1, ["momentum"] = 0.8, ["nesterov"] = true, ["weight_decay"] = 0.01 }],
        ["sgd-maximize"] = [new() { ["lr"] = 0.05, ["weight_decay"] = 0.2, ["maximize"] = true }, new() { ["lr"] = 0.1, ["momentum"] = 0.5, ["maximize"] = true, ["weight_decay"] = 0.05 }],
    };

    private static JsonElement s_reference;

    [ClassInitialize]
    public static void RunReference(TestContext _) =>
        s_reference = JsonDocument.Parse(ReferencePython.Run(Script, JsonSerializer.Serialize(Cases))).RootElement;

    [TestMethod]
    [DataRow("adamw", true)]
    [DataRow("adamw-amsgrad-maximize", true)]
    [DataRow("sgd", true)]
    [DataRow("sgd-maximize", true)]
    [DataRow("adamw", false)]
    [DataRow("adamw-amsgrad-maximize", false)]
    [DataRow("sgd", false)]
    [DataRow("sgd-maximize", false)]
    public void StepsMatchTorchOptim(string name, bool fused)
    {
        TorchRuntime.EnsureLoaded();
        Assert.IsTrue(FusedKernels.Available, "libtorch 2.10's fused optimizer kernels should compile");
        var groups = Cases[name];
        var parameters = NewParameters();
        using var optimizer = Create(name, groups, parameters, fused);
        Train(optimizer, groups, parameters, 0, Steps);
        long fusedUpdates = optimizer switch { HeldScalarAdamW a => a.FusedUpdates, HeldScalarSgd s => s.FusedUpdates, _ => -1 };
        Assert.AreEqual(fused ? Steps * parameters.Length : 0, fusedUpdates, "parameter updates made by the fused kernel");
        var expected = s_reference.GetProperty(name);
        for (int k = 0; k < parameters.Length; k++)
        {
            var want = expected[k].EnumerateArray().Select(e => e.GetSingle()).ToArray();
            var got = parameters[k].data<float>().ToArray();
            for (int i = 0; i < want.Length; i++)
                Assert.AreEqual(want[i], got[i], 2e-6 + 2e-6 * Math.Abs(want[i]), $"{name} (fused: {fused}): parameter {k}[{i}] after {Steps} steps");
        }
        foreach (var p in parameters) p.Dispose();
    }

    /// <summary>
    /// The state our optimizers save (TorchSharp's form: step counts, moments, momentum buffers, which both paths update in place)
    /// resumes a run: three steps, saved, loaded into a new optimizer, three more, give the uninterrupted run's parameters exactly.
    /// </summary>
    [TestMethod]
    [DataRow("adamw-amsgrad-maximize")]
    [DataRow("sgd")]
    public void SavedStateResumesTheSameSteps(string name)
    {
        TorchRuntime.EnsureLoaded();
        var groups = Cases[name];
        var whole = NewParameters();
        using (var optimizer = Create(name, groups, whole, fused: true)) Train(optimizer, groups, whole, 0, Steps);
        var resumed = NewParameters();
        using var saved = new MemoryStream();
        using (var first = Create(name, groups, resumed, fused: true))
        {
            Train(first, groups, resumed, 0, Steps / 2);
            using var writer = new BinaryWriter(saved, System.Text.Encoding.UTF8, leaveOpen: true);
            ((OptimizerHelper)first).save_state_dict(writer);
        }
        saved.Position = 0;
        using (var second = Create(name, groups, resumed, fused: true))
        {
            using (var reader = new BinaryReader(saved)) ((OptimizerHelper)second).load_state_dict(reader);
            Train(second, groups, resumed, Steps / 2, Steps);
        }
        for (int k = 0; k < whole.Length; k++)
            CollectionAssert.AreEqual(whole[k].data<float>().ToArray(), resumed[k].data<float>().ToArray(), $"{name}: parameter {k}");
        foreach (var p in whole.Concat(resumed)) p.Dispose();
    }

    private static Parameter[] NewParameters() =>
        Shapes.Select((shape, k) => new Parameter(tensor(Values(k, shape.Aggregate(1L, (a, b) => a * b), -1)).reshape(shape))).ToArray();

    /// <summary>Steps <paramref name="from"/> to <paramref name="to"/> − 1 of the shared schedule (rates and gradients).</summary>
    private static void Train(optim.Optimizer optimizer, Dictionary<string, object>[] groups, Parameter[] parameters, int from, int to)
    {
        var rateControls = optimizer.ParamGroups.ToArray();
        for (int t = from; t < to; t++)
        {
            using var scope = NewDisposeScope();
            for (int k = 0; k < groups.Length; k++) rateControls[k].LearningRate = (double)groups[k]["lr"] * (1 - 0.1 * t);
            optimizer.zero_grad();
            var loss = parameters.Select((p, k) => (p * tensor(Values(k, p.numel(), t)).reshape(p.shape)).sum()).Aggregate((a, b) => a.Plus(b));
            loss.backward();
            optimizer.step();
        }
    }

    private static optim.Optimizer Create(string name, Dictionary<string, object>[] groups, Parameter[] parameters, bool fused)
    {
        double Get(Dictionary<string, object> g, string key, double fallback) => g.TryGetValue(key, out var v) ? Convert.ToDouble(v, CultureInfo.InvariantCulture) : fallback;
        bool Flag(Dictionary<string, object> g, string key) => g.TryGetValue(key, out var v) && (bool)v;
        if (name.StartsWith("adamw", StringComparison.Ordinal))
            return new HeldScalarAdamW(groups.Select((g, k) => new AdamW.ParamGroup(Members[k].Select(i => parameters[i]), new AdamW.Options
            {
                LearningRate = Get(g, "lr", 1e-3), weight_decay = Get(g, "weight_decay", 0.01), eps = Get(g, "eps", 1e-8),
                beta1 = g.TryGetValue("betas", out var b) ? ((double[])b)[0] : 0.9, beta2 = g.TryGetValue("betas", out var b2) ? ((double[])b2)[1] : 0.999,
                amsgrad = Flag(g, "amsgrad"), maximize = Flag(g, "maximize"),
            }))) { Fused = fused };
        return new HeldScalarSgd(groups.Select((g, k) => new SGD.ParamGroup(Members[k].Select(i => parameters[i]), new SGD.Options
        {
            LearningRate = Get(g, "lr", 0.1), momentum = Get(g, "momentum", 0), dampening = Get(g, "dampening", 0), weight_decay = Get(g, "weight_decay", 0),
            nesterov = Flag(g, "nesterov"), maximize = Flag(g, "maximize"),
        })), lr: 0.1) { Fused = fused };
    }

    /// <summary>Parameter <paramref name="k"/>'s initial values (step −1) or its loss weights, which are its gradient, at step <paramref name="t"/>.</summary>
    private static float[] Values(int k, long n, int t) =>
        Enumerable.Range(0, (int)n).Select(i => (float)(t >= 0 ? Math.Sin(0.37 * i + 1.1 * t + k) : 0.1 * (i % 7) - 0.3 + 0.05 * k)).ToArray();
}
