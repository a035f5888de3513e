using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// The backbone contract on the modern families: feature stages and features-only mode, out indices, head reset inside
/// torchvision's classifier containers, stage groups, dropout defaults, stochastic depth (identity in eval, random in training),
/// and the ViT's token pooling.
/// </summary>
[TestClass]
public sealed class ModernContractTests
{
    [TestMethod]
    [DataRow("mobilenet_v2")]
    [DataRow("mobilenet_v3_small")]
    [DataRow("efficientnet_b0")]
    [DataRow("convnext_tiny")]
    [DataRow("mobilenet_v3_large")]
    [DataRow("efficientnet_v2_s")]
    [DataRow("regnet_y_400mf")]
    [DataRow("regnet_x_400mf")]
    [DataRow("seresnet50")]
    public void FeaturesOnlyReturnsTheFeatureInfoStages(string name)
    {
        TorchRuntime.EnsureLoaded();
        using var model = ModelRegistry.Create(name, new ModelOptions { FeaturesOnly = true });
        var moduleNames = model.named_modules().Select(m => m.name).ToHashSet();
        foreach (var info in model.FeatureInfo) Assert.Contains(info.ModuleName, moduleNames, $"{name}: FeatureInfo must name a real module");
        CollectionAssert.AreEqual(new[] { 2, 4, 8, 16, 32 }.Skip(name.StartsWith("convnext", StringComparison.Ordinal) ? 1 : 0).ToArray(),
            model.FeatureInfo.Select(f => f.Reduction).ToArray(), name);
        Assert.IsFalse(model.state_dict().Keys.Any(k => k.StartsWith(model.PretrainedConfig.Classifier.Split('.')[0] + ".", StringComparison.Ordinal)),
            $"{name}: features-only has no head");
        Assert.AreEqual(0, model.NumClasses);

        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = randn(2, 3, 64, 64);
        var stages = model.ForwardStages(x);
        Assert.HasCount(model.FeatureInfo.Count, stages);
        for (int i = 0; i < stages.Count; i++)
        {
            var info = model.FeatureInfo[i];
            CollectionAssert.AreEqual(new long[] { 2, info.NumChannels, 64 / info.Reduction, 64 / info.Reduction }, stages[i].shape, $"{name} {info.ModuleName}");
        }
        CollectionAssert.AreEqual(stages[^1].shape, model.forward(x).shape);
        Assert.ThrowsExactly<InvalidOperationException>(() => model.ForwardHead(stages[^1]));
        Assert.ThrowsExactly<InvalidOperationException>(() => model.ResetClassifier(10));

        using var partial = ModelRegistry.Create(name, new ModelOptions { FeaturesOnly = true, OutIndices = [1, -1] });
        var maps = partial.ForwardStages(x);
        CollectionAssert.AreEqual(new[] { partial.FeatureInfo[1].NumChannels, partial.FeatureInfo[^1].NumChannels }, maps.Select(m => (int)m.shape[1]).ToArray());
    }

    [TestMethod]
    public void EfficientNetB0FeatureInfoIsTimms()
    {
        TorchRuntime.EnsureLoaded();
        using var model = ModernReference.CreateOnMeta("efficientnet_b0");
        CollectionAssert.AreEqual(new[] { (16, 2), (24, 4), (40, 8), (112, 16), (320, 32) },
            model.FeatureInfo.Select(f => (f.NumChannels, f.Reduction)).ToArray());
        Assert.AreEqual(1280, model.NumFeatures, "the final 1×1 conv (timm's conv_head) feeds the head");
    }

    [TestMethod]
    [DataRow("mobilenet_v2", "classifier.1")]
    [DataRow("mobilenet_v3_large", "classifier.3")]
    [DataRow("efficientnet_b0", "classifier.1")]
    [DataRow("convnext_tiny", "classifier.2")]
    [DataRow("efficientnet_v2_s", "classifier.1")]
    [DataRow("regnet_x_400mf", "fc")]
    [DataRow("seresnet50", "fc")]
    [DataRow("vit_b_32", "heads.head")]
    public void ResetClassifierReplacesOnlyTheLinearHeadInsideTheContainer(string name, string classifier)
    {
        TorchRuntime.EnsureLoaded();
        // A ViT is built for its input size: 64 px here, as for the CNNs.
        using var model = ModelRegistry.Create(name, name.StartsWith("vit", StringComparison.Ordinal) ? new ModelOptions { ImageSize = 64 } : null);
        Assert.AreEqual(classifier, model.PretrainedConfig.Classifier);
        var before = model.state_dict().ToDictionary(e => e.Key, e => e.Value.clone());
        model.ResetClassifier(7);
        var after = model.state_dict();
        CollectionAssert.AreEqual(before.Keys.ToArray(), after.Keys.ToArray(), $"{name}: keys and their order are kept");
        foreach (var (key, value) in after)
        {
            if (key.StartsWith(classifier + ".", StringComparison.Ordinal)) continue;
            Assert.IsTrue(ResNetReference.Identical(value, before[key]), $"{name}: {key} changed");
        }
        Assert.AreEqual(7L, after[classifier + ".weight"].shape[0]);
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = randn(2, 3, 64, 64);
        CollectionAssert.AreEqual(new long[] { 2, 7 }, model.forward(x).shape);

        model.ResetClassifier(0);
        var pooled = model.forward(x);
        Assert.IsTrue(ResNetReference.Identical(pooled, model.ForwardHead(model.ForwardFeatures(x), preLogits: true)), "no classifier: pre-logits out");
        Assert.AreEqual((long)model.NumFeatures, pooled.shape[1]);
        foreach (var t in before.Values) t.Dispose();
    }

    [TestMethod]
    [DataRow("mobilenet_v3_small")]
    [DataRow("efficientnet_v2_s")]
    [DataRow("convnext_tiny")]
    [DataRow("regnet_y_400mf")]
    [DataRow("vit_b_32")]
    [DataRow("seresnet50")]
    public void StageGroupsPartitionEveryParameterAndFreezeUpToLeavesTheHeadTrainable(string name)
    {
        TorchRuntime.EnsureLoaded();
        using var model = ModelRegistry.Create(name);
        var groups = model.StageGroups;
        Assert.AreEqual("head", groups[^1].Name);
        foreach (var (parameter, _) in model.named_parameters())
            Assert.AreEqual(1, groups.Count(g => g.Contains(parameter)), $"{name}: {parameter} must be in exactly one stage group");
        model.FreezeUpTo(groups.Count - 2);
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToArray();
        Assert.IsTrue(trainable.Length > 0 && trainable.All(p => groups[^1].Contains(p)),
            $"{name}: only the head stays trainable; got {string.Join(", ", trainable.Take(5))}");
        Assert.Contains(model.PretrainedConfig.Classifier + ".weight", trainable, $"{name}: the classifier is in the head group");
    }

    [TestMethod]
    public void DropRateDefaultsToTheArchitecturesAndCanBeOverridden()
    {
        TorchRuntime.EnsureLoaded();
        using var defaulted = ModernReference.CreateOnMeta("efficientnet_b7");
        Assert.AreEqual(EfficientNetFamily.Architectures.Single(a => a.Name == "efficientnet_b7").Dropout, defaulted.DropRate);
        using var none = ModelRegistry.Create("mobilenet_v3_small", new ModelOptions { DropRate = 0 });
        Assert.AreEqual(0, none.DropRate);
        using var resnet = ModernReference.CreateOnMeta("resnet18");
        Assert.AreEqual(0, resnet.DropRate, "architectures without dropout default to 0");

        // Dropout is active in training only: train-mode head outputs vary, eval-mode ones do not.
        using var model = ModelRegistry.Create("mobilenet_v3_small", new ModelOptions { DropRate = 0.5 });
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var features = randn(4, 576, 2, 2);
        model.train();
        Assert.IsFalse(model.ForwardHead(features).allclose(model.ForwardHead(features)), "dropout in training");
        model.eval();
        Assert.IsTrue(ResNetReference.Identical(model.ForwardHead(features), model.ForwardHead(features)), "no dropout in eval");
    }

    [TestMethod]
    public void StochasticDepthDropsWholeSamplesWithItsProbabilityOnlyInTraining()
    {
        TorchRuntime.EnsureLoaded();
        manual_seed(3);
        using var sd = new StochasticDepth(0.3);
        using var scope = NewDisposeScope();
        var x = ones(20000, 3, 2, 2);
        sd.eval();
        Assert.IsTrue(ResNetReference.Identical(x, sd.call(x)), "identity in eval");
        sd.train();
        var y = sd.call(x);
        var perSample = y.view(20000, -1);
        var dropped = perSample.eq(0).all(1);
        var kept = perSample.eq(1 / 0.7f).all(1);
        Assert.IsTrue(dropped.logical_or(kept).all().item<bool>(), "each sample is either dropped entirely or scaled by 1/(1-p)");
        double rate = dropped.to_type(ScalarType.Float32).mean().item<float>();
        // Binomial(20000, 0.3): standard deviation 0.0032; allow 5 sigma.
        Assert.AreEqual(0.3, rate, 0.016, "drop rate");
        Assert.AreEqual(1.0, y.mean().item<float>(), 0.03, "expectation preserved");
        using var never = new StochasticDepth(0);
        never.train();
        Assert.IsTrue(ResNetReference.Identical(x, never.call(x)), "p = 0 is the identity");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new StochasticDepth(1.5));
    }

    [TestMethod]
    public void EfficientNetStochasticDepthMakesTrainingPassesRandomAndEvalPassesDeterministic()
    {
        TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = randn(4, 3, 32, 32);
        using var model = ModelRegistry.Create("efficientnet_b0", new ModelOptions { DropRate = 0 });
        model.train();
        Assert.IsFalse(model.forward(x).allclose(model.forward(x)), "stochastic depth is active in training");
        model.eval();
        Assert.IsTrue(ResNetReference.Identical(model.forward(x), model.forward(x)), "eval is deterministic");
        using var without = ModelRegistry.Create("efficientnet_b0", new ModelOptions { DropRate = 0, DropPathRate = 0 });
        Assert.IsTrue(ModernReference.DropPathRates(without).All(p => p == 0));
        without.train();
        Assert.IsTrue(without.forward(x).allclose(without.forward(x), rtol: 1e-5, atol: 1e-6), "without drop path, training passes agree");
    }

    [TestMethod]
    public void VitPoolsByClassTokenOrMeanAndReturnsTokensFromStages()
    {
        TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = randn(2, 3, 64, 64);
        using var token = (VisionTransformer)ModelRegistry.Create("vit_b_32", new ModelOptions { ImageSize = 64, NumClasses = 0 });
        using var avg = (VisionTransformer)ModelRegistry.Create("vit_b_32", new ModelOptions { ImageSize = 64, NumClasses = 0, GlobalPool = "avg" });
        avg.load_state_dict(token.state_dict());
        token.eval();
        avg.eval();
        var tokens = token.ForwardFeatures(x);
        CollectionAssert.AreEqual(new long[] { 2, 1 + 4, 768 }, tokens.shape, "[N, 1 + (64/32)², D]");
        Assert.IsTrue(ResNetReference.Identical(tokens[.., 0].contiguous(), token.forward(x)), "class-token pooling");
        Assert.IsTrue(avg.forward(x).allclose(tokens[.., 1..].mean([1]), rtol: 1e-5, atol: 1e-6), "mean of the patch tokens");

        var stages = token.ForwardStages(x);
        Assert.HasCount(12, stages);
        Assert.IsTrue(token.FeatureInfo.All(f => f.Reduction == 32 && f.NumChannels == 768));
        CollectionAssert.AreEqual(new long[] { 2, 5, 768 }, stages[^1].shape, "stages are tokens");
        CollectionAssert.AreEqual(new long[] { 2, 768, 2, 2 }, token.TokensToMap(stages[^1]).shape);
        Assert.IsTrue(tokens.allclose(((nn.Module<Tensor, Tensor>)token.named_modules().Single(m => m.name == "encoder.ln").module).call(stages[^1]), rtol: 1e-5, atol: 1e-6),
            "features = final norm of the last block");

        Assert.ThrowsExactly<ArgumentException>(() => ModelRegistry.Create("vit_b_32", new ModelOptions { ImageSize = 50 }));
        Assert.ThrowsExactly<ArgumentException>(() => ModelRegistry.Create("convnext_tiny", new ModelOptions { GlobalPool = "token" }));
        Assert.ThrowsExactly<ArgumentException>(() => ModelRegistry.Create("resnet18", new ModelOptions { GlobalPool = "max" }));
    }

    [TestMethod]
    public void TruncatedNormalHasNoNaNAndTheRequestedSpreadAndBounds()
    {
        TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        var small = empty(3072, 768);
        Layers.TruncatedNormal(small, 0.02);
        Assert.IsFalse(small.isnan().any().item<bool>() || small.isinf().any().item<bool>(), "finite values");
        Assert.AreEqual(0.02, small.std().item<float>(), 0.0005);
        // A truncation that matters: N(0, 1) cut to [-1, 2].
        var wide = empty(200000);
        Layers.TruncatedNormal(wide, 1, a: -1, b: 2);
        Assert.IsTrue(wide.min().item<float>() >= -1 && wide.max().item<float>() <= 2);
        // Mean of N(0,1) truncated to [-1, 2]: (φ(-1) - φ(2)) / (Φ(2) - Φ(-1)).
        double phi(double x) => Math.Exp(-x * x / 2) / Math.Sqrt(2 * Math.PI);
        double expected = (phi(-1) - phi(2)) / (0.9772498680518208 - 0.15865525393145707);
        Assert.AreEqual(expected, wide.mean().item<float>(), 0.01);
    }
}
