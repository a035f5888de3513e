using System.Text.Json;
using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.MLNet.Distillation;
using Cnn.MLNet.Training;
using Cnn.Tests.Shared;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Tests.Training;

/// <summary>
/// The fine-tuning recipes' formulas against PyTorch (Debian torch 1.13) at test time, on inputs the reference draws: label
/// smoothing (<c>F.cross_entropy(label_smoothing=)</c>), timm's <c>mixup_target</c> and <c>SoftTargetCrossEntropy</c>, mixup and
/// CutMix of the images (timm's <c>rand_bbox</c> and λ correction), the EMA update (<c>ModelEmaV2</c>), gradient clipping
/// (<c>clip_grad_norm_</c>), timm's no-weight-decay rule on torchvision's resnet18 and the rate spreads of fastai and timm.
/// </summary>
[TestClass]
public sealed class RecipeFormulaTests
{
    private static JsonElement s_reference;

    [ClassInitialize]
    public static void Reference(TestContext _)
    {
        string json = ReferencePython.Run("""
            import json, numpy as np, torch, torchvision
            import torch.nn.functional as F
            torch.manual_seed(3)
            out = {}
            def one_hot(x, n, on, off):
                return torch.full((x.size(0), n), off).scatter_(1, x.long().view(-1, 1), on)
            def mixup_target(t, n, lam, smoothing):  # timm.data.mixup.mixup_target
                off = smoothing / n; on = 1. - smoothing + off
                return one_hot(t, n, on, off) * lam + one_hot(t.flip(0), n, on, off) * (1. - lam)
            def soft_ce(x, target):  # timm.loss.SoftTargetCrossEntropy
                return torch.sum(-target * F.log_softmax(x, dim=-1), dim=-1).mean()
            logits = torch.randn(8, 5) * 2
            labels = torch.tensor([0, 3, 1, 4, 4, 2, 0, 1])
            out["logits"] = logits.flatten().tolist(); out["labels"] = labels.tolist()
            out["ce_smooth"] = [F.cross_entropy(logits, labels, label_smoothing=s).item() for s in (0.0, 0.1, 0.3)]
            out["targets"] = mixup_target(labels, 5, 0.7, 0.1).flatten().tolist()
            out["mixed_ce"] = soft_ce(logits, mixup_target(labels, 5, 0.7, 0.1)).item()
            out["mixed_ce_plain"] = soft_ce(logits, mixup_target(labels, 5, 0.35, 0.0)).item()
            x = torch.randn(4, 2, 6, 7)
            out["images"] = x.flatten().tolist()
            xm = x.clone(); xf = xm.flip(0).mul_(1. - 0.7); xm.mul_(0.7).add_(xf)  # timm Mixup._mix_batch
            out["mixup"] = xm.flatten().tolist()
            cuts = []
            for lam, cy, cx in [(0.6, 3, 2), (0.3, 0, 6), (0.9, 5, 0), (0.05, 2, 3), (0.999, 1, 1)]:
                H, W = 6, 7
                ratio = np.sqrt(1 - lam); ch, cw = int(H * ratio), int(W * ratio)  # timm rand_bbox
                yl = np.clip(cy - ch // 2, 0, H); yh = np.clip(cy + ch // 2, 0, H)
                xl = np.clip(cx - cw // 2, 0, W); xh = np.clip(cx + cw // 2, 0, W)
                corrected = 1. - (yh - yl) * (xh - xl) / float(H * W)
                xc = x.clone(); xc[:, :, yl:yh, xl:xh] = x.flip(0)[:, :, yl:yh, xl:xh]
                cuts.append({"lam": lam, "cy": cy, "cx": cx, "box": [int(yl), int(yh), int(xl), int(xh)], "corrected": corrected, "mixed": xc.flatten().tolist()})
            out["cutmix"] = cuts
            # timm ModelEmaV2 on a Linear + BatchNorm1d: ema <- decay * ema + (1 - decay) * model, per state-dict entry.
            m = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
            states = []
            for k in range(4):
                states.append({n: v.clone() for n, v in m.state_dict().items()})
                with torch.no_grad():
                    for p in m.parameters(): p.add_(torch.randn_like(p))
                    m[1].running_mean.add_(1.0); m[1].running_var.mul_(1.5)
            ema = {n: v.clone().float() for n, v in states[0].items()}
            for s in states[1:]:
                for n in ema:
                    if s[n].is_floating_point(): ema[n] = 0.9 * ema[n] + (1. - 0.9) * s[n]
            out["ema_states"] = [{n: v.flatten().tolist() for n, v in s.items() if v.is_floating_point()} for s in states]
            out["ema"] = {n: v.flatten().tolist() for n, v in ema.items() if states[0][n].is_floating_point()}
            # clip_grad_norm_
            ps = [torch.nn.Parameter(torch.zeros(3, 4)), torch.nn.Parameter(torch.zeros(5))]
            grads = [torch.randn(3, 4) * 3, torch.randn(5) * 3]
            for p, g in zip(ps, grads): p.grad = g.clone()
            out["grads"] = [g.flatten().tolist() for g in grads]
            out["grad_norm"] = torch.nn.utils.clip_grad_norm_(ps, 1.5).item()
            out["clipped"] = [p.grad.flatten().tolist() for p in ps]
            # timm param_groups_weight_decay: no decay for ndim <= 1 or names ending in ".bias".
            r = torchvision.models.resnet18(num_classes=5)
            out["no_decay"] = sorted(n for n, p in r.named_parameters() if p.ndim <= 1 or n.endswith(".bias"))
            # fastai even_mults(start, stop, n) and timm's layer-decay scales.
            mult = 100.0; step = mult ** (1 / 5)
            out["even_mults"] = [0.01 * step ** i for i in range(6)]
            out["layer_decay"] = [0.65 ** (5 - i) for i in range(6)]
            print(json.dumps(out))
            """);
        s_reference = JsonDocument.Parse(json).RootElement;
    }

    private static float[] Floats(JsonElement e) => e.EnumerateArray().Select(v => v.GetSingle()).ToArray();

    private static Tensor Logits() => tensor(Floats(s_reference.GetProperty("logits")), [8, 5]);

    private static Tensor Labels() => tensor(s_reference.GetProperty("labels").EnumerateArray().Select(v => v.GetInt64()).ToArray());

    private static void AssertClose(float[] expected, Tensor actual, double tolerance, string what)
    {
        var values = actual.contiguous().data<float>().ToArray();
        Assert.HasCount(expected.Length, values, what);
        for (int i = 0; i < expected.Length; i++)
            Assert.AreEqual(expected[i], values[i], tolerance, $"{what}[{i}]");
    }

    [TestMethod]
    public void LabelSmoothingIsPyTorchsCrossEntropy()
    {
        using var scope = NewDisposeScope();
        var expected = s_reference.GetProperty("ce_smooth").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        double[] smoothing = [0.0, 0.1, 0.3];
        for (int i = 0; i < smoothing.Length; i++)
        {
            var output = new TrainingOutput(Logits(), []);
            Assert.AreEqual(expected[i], ClassificationObjective.Loss(output, Labels(), smoothing[i]).item<float>(), 1e-5, $"smoothing {smoothing[i]}");
        }
    }

    [TestMethod]
    public void MixedTargetsAndSoftCrossEntropyAreTimms()
    {
        using var scope = NewDisposeScope();
        AssertClose(Floats(s_reference.GetProperty("targets")), BatchMixer.Targets(Labels(), 5, 0.7, 0.1), 1e-6, "mixup_target");
        var output = new TrainingOutput(Logits(), []);
        Assert.AreEqual(s_reference.GetProperty("mixed_ce").GetDouble(), ClassificationObjective.Loss(output, Labels(), 0.1, 0.7).item<float>(), 1e-5);
        // Distillation's hard term with mixed labels (alpha 1: the hard term alone) is the same soft-target cross-entropy.
        var terms = DistillationLoss.Compute(Logits(), Logits().flip(1), Labels(), 2.0, 1.0, mixing: new DistillationLoss.Mixing(0.1, 0.7));
        Assert.AreEqual(s_reference.GetProperty("mixed_ce").GetDouble(), terms.Total.item<float>(), 1e-5, "distillation hard term, mixed and smoothed");
        terms = DistillationLoss.Compute(Logits(), Logits(), Labels(), 2.0, 1.0, mixing: new DistillationLoss.Mixing(0, 0.35));
        Assert.AreEqual(s_reference.GetProperty("mixed_ce_plain").GetDouble(), terms.Total.item<float>(), 1e-5, "distillation hard term, mixed");
    }

    [TestMethod]
    public void MixupAndCutMixMixImagesAsTimm()
    {
        using var scope = NewDisposeScope();
        var images = tensor(Floats(s_reference.GetProperty("images")), [4, 2, 6, 7]);
        var (mixed, lambda) = BatchMixer.Apply(images, new MixDecision(0.7, null));
        Assert.AreEqual(0.7, lambda);
        AssertClose(Floats(s_reference.GetProperty("mixup")), mixed, 1e-6, "mixup");
        foreach (var cut in s_reference.GetProperty("cutmix").EnumerateArray())
        {
            double lam = cut.GetProperty("lam").GetDouble();
            int cy = cut.GetProperty("cy").GetInt32(), cx = cut.GetProperty("cx").GetInt32();
            var box = new CutBox((cy + 0.5) / 6, (cx + 0.5) / 7, Math.Sqrt(1 - lam));
            var expectedBox = cut.GetProperty("box").EnumerateArray().Select(v => (long)v.GetInt32()).ToArray();
            var (top, bottom, left, right) = box.Pixels(6, 7);
            CollectionAssert.AreEqual(expectedBox, new[] { top, bottom, left, right }, $"rand_bbox for lam {lam} at ({cy}, {cx})");
            var (cutMixed, corrected) = BatchMixer.Apply(images, new MixDecision(lam, box));
            Assert.AreEqual(cut.GetProperty("corrected").GetDouble(), corrected, 1e-12, $"corrected lambda for {lam}");
            AssertClose(Floats(cut.GetProperty("mixed")), cutMixed, 0, $"cutmix {lam}");
        }
    }

    [TestMethod]
    public void ModelEmaUpdatesAsModelEmaV2()
    {
        using var scope = NewDisposeScope();
#pragma warning disable CNN0001 // BatchNorm1d's training forward counts with temporary scalars; this model is never run
        var model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2));
#pragma warning restore CNN0001
        var states = s_reference.GetProperty("ema_states").EnumerateArray().ToArray();
        void Load(JsonElement state)
        {
            using var noGrad = no_grad();
            foreach (var (name, value) in model.state_dict())
                if (value.is_floating_point()) value.copy_(tensor(Floats(state.GetProperty(name)), value.shape));
        }
        Load(states[0]);
        using var ema = new ModelEma(model, 0.9);
        foreach (var state in states.Skip(1))
        {
            Load(state);
            using (no_grad()) model.state_dict()["1.num_batches_tracked"].add_(Scalars.One, Scalars.One);
            ema.Update(model);
        }
        foreach (var property in s_reference.GetProperty("ema").EnumerateObject())
            AssertClose(Floats(property.Value), ema[property.Name], 1e-6, property.Name);
        Assert.AreEqual(3L, ema["1.num_batches_tracked"].item<long>(), "integer buffers are copied");
    }

    [TestMethod]
    public void GradientClippingIsClipGradNorm()
    {
        using var scope = NewDisposeScope();
        var grads = s_reference.GetProperty("grads").EnumerateArray().Select(Floats).ToArray();
        var parameters = new[] { new TorchSharp.Modules.Parameter(zeros(3, 4)), new TorchSharp.Modules.Parameter(zeros(5)) };
        for (int i = 0; i < 2; i++)
        {
            parameters[i].grad = tensor(grads[i], parameters[i].shape);
        }
        double norm = nn.utils.clip_grad_norm_(parameters, 1.5);
        Assert.AreEqual(s_reference.GetProperty("grad_norm").GetDouble(), norm, 1e-4);
        var clipped = s_reference.GetProperty("clipped").EnumerateArray().Select(Floats).ToArray();
        for (int i = 0; i < 2; i++) AssertClose(clipped[i], parameters[i].grad!, 1e-6, $"clipped grad {i}");
    }

    [TestMethod]
    public void NormsAndBiasesGetNoWeightDecayAsInTimm()
    {
        using var model = ModelRegistry.Create("resnet18", new ModelOptions { NumClasses = 5 });
        var expected = s_reference.GetProperty("no_decay").EnumerateArray().Select(v => v.GetString()!).ToArray();
        var options = new CnnTrainerOptions { WeightDecay = 0.05 };
        var groups = ParameterGroups.Build(model, options, RateSpread.None);
        var names = model.named_parameters().ToDictionary(p => p.parameter.Handle, p => p.name);
        var undecayed = groups.Where(g => g.WeightDecay == 0).SelectMany(g => g.Parameters).Select(p => names[p.Handle]).Order(StringComparer.Ordinal).ToArray();
        CollectionAssert.AreEqual(expected, undecayed);
        Assert.IsTrue(groups.Where(g => g.WeightDecay > 0).All(g => g.WeightDecay == 0.05));
        Assert.AreEqual(model.parameters().Count(), groups.Sum(g => g.Parameters.Count), "every parameter in exactly one group");

        options.DecayNormAndBias = true;
        Assert.IsTrue(ParameterGroups.Build(model, options, RateSpread.None).All(g => g.WeightDecay == 0.05));
    }

    [TestMethod]
    public void RateSpreadsAreFastaisSliceAndTimmsLayerDecay()
    {
        var slice = new RateSpread(100, null);
        var decay = new RateSpread(null, 0.65);
        var evenMults = Floats(s_reference.GetProperty("even_mults"));
        var layerDecay = Floats(s_reference.GetProperty("layer_decay"));
        for (int i = 0; i < 6; i++)
        {
            Assert.AreEqual(evenMults[i], slice.Scale(i, 6), 1e-6 * evenMults[i], $"even_mults[{i}]");
            Assert.AreEqual(layerDecay[i], decay.Scale(i, 6), 1e-6, $"layer decay[{i}]");
        }
        Assert.AreEqual(1, RateSpread.None.Scale(0, 6));

        // The optimizer's groups take rate × scale: resnet18's stem (conv1/bn1) at lr/100, its head (fc) at lr.
        using var model = ModelRegistry.Create("resnet18", new ModelOptions { NumClasses = 5 });
        var options = new CnnTrainerOptions { LearningRate = 0.02 };
        var groups = ParameterGroups.Build(model, options, slice);
        using var optimizer = OptimizationSetup.CreateOptimizer(options, groups);
        OptimizationSetup.SetLearningRate(optimizer, groups, 0.5);
        var rates = optimizer.ParamGroups.Select(g => g.LearningRate).ToArray();
        for (int i = 0; i < groups.Count; i++) Assert.AreEqual(0.5 * groups[i].RateScale, rates[i], 1e-12);
        Assert.AreEqual(0.005, rates[0], 1e-9, "stem");
        Assert.AreEqual(0.5, rates[^1], 1e-9, "head");
    }

    [TestMethod]
    public void BetaSamplesHaveBetaMoments()
    {
        foreach (double alpha in new[] { 0.2, 0.8, 1.0, 2.5 })
        {
            var random = new Random(11);
            var samples = Enumerable.Range(0, 40000).Select(_ => BetaSampler.Sample(random, alpha)).ToArray();
            double mean = samples.Average(), variance = samples.Select(s => (s - mean) * (s - mean)).Average();
            double expectedVariance = 1 / (4 * (2 * alpha + 1)); // Beta(a, a): a² / ((2a)² (2a + 1))
            Assert.AreEqual(0.5, mean, 0.01, $"mean of Beta({alpha}, {alpha})");
            Assert.AreEqual(expectedVariance, variance, 0.05 * expectedVariance + 0.002, $"variance of Beta({alpha}, {alpha})");
            Assert.IsTrue(samples.All(s => s >= 0 && s <= 1));
        }
    }

    [TestMethod]
    public void MixDecisionsFollowTheProbabilities()
    {
        var options = new CnnTrainerOptions { MixupAlpha = 0.8, CutMixAlpha = 1.0, MixupProbability = 0.6, MixupSwitchProbability = 0.25, Seed = 4 };
        var mixer = new BatchMixer(options);
        var decisions = Enumerable.Range(1, 4000).Select(b => mixer.Decide(b % 7, b)).ToArray();
        double mixed = decisions.Count(d => !d.IsIdentity) / 4000.0;
        double cut = decisions.Count(d => d.Box is not null) / (double)decisions.Count(d => !d.IsIdentity);
        Assert.AreEqual(0.6, mixed, 0.03);
        Assert.AreEqual(0.25, cut, 0.03);
        Assert.AreEqual(mixer.Decide(3, 17), new BatchMixer(options).Decide(3, 17), "decisions are seeded by (seed, epoch, batch)");
        Assert.IsTrue(new BatchMixer(new CnnTrainerOptions()).Decide(0, 1).IsIdentity, "off by default");
    }
}
