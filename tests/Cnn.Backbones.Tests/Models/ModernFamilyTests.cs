using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// What only the modern families do (the shared contract is <see cref="ModelContractTests"/>): EfficientNet's timm feature info,
/// dropout defaults, stochastic depth (identity in eval, random in training), and the ViT's token pooling.
/// </summary>
[TestClass]
public sealed class ModernFamilyTests
{
    [TestMethod]
    public void EfficientNetB0FeatureInfoIsTimms()
    {
        TorchRuntime.EnsureLoaded();
        using var model = new ModelSpec("efficientnet_b0").CreateOnMeta();
        CollectionAssert.AreEqual(new[] { (16, 2), (24, 4), (40, 8), (112, 16), (320, 32) },
            model.FeatureInfo.Select(f => (f.NumChannels, f.Reduction)).ToArray());
        Assert.AreEqual(1280, model.NumFeatures, "the final 1×1 conv (timm's conv_head) feeds the head");
    }

    [TestMethod]
    public void DropRateDefaultsToTheArchitecturesAndCanBeOverridden()
    {
        TorchRuntime.EnsureLoaded();
        using var defaulted = new ModelSpec("efficientnet_b7").CreateOnMeta();
        Assert.AreEqual(EfficientNetFamily.Architectures.Single(a => a.Name == "efficientnet_b7").Dropout, defaulted.DropRate);
        using var none = ModelRegistry.Create("mobilenet_v3_small", new ModelOptions { DropRate = 0 });
        Assert.AreEqual(0, none.DropRate);
        using var resnet = new ModelSpec("resnet18").CreateOnMeta();
        Assert.AreEqual(0, resnet.DropRate, "architectures without dropout default to 0");

        // Dropout is active in training only: train-mode head outputs vary, eval-mode ones do not.
        using var model = ModelRegistry.Create("mobilenet_v3_small", new ModelOptions { DropRate = 0.5 });
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var features = randn(4, 576, 2, 2);
        model.train();
        Assert.IsFalse(model.ForwardHead(features).allclose(model.ForwardHead(features)), "dropout in training");
        model.eval();
        Assert.IsTrue(TensorAssert.Identical(model.ForwardHead(features), model.ForwardHead(features)), "no dropout in eval");
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
        Assert.IsTrue(TensorAssert.Identical(x, sd.call(x)), "identity in eval");
        sd.train();
        var y = sd.call(x);
        var perSample = y.view(20000, -1);
        var dropped = perSample.eq(Scalars.Zero).all(1);
        using var scaled = Scalars.Held(1 / 0.7f);
        var kept = perSample.eq(scaled).all(1);
        Assert.IsTrue(dropped.logical_or(kept).all().item<bool>(), "each sample is either dropped entirely or scaled by 1/(1-p)");
        double rate = dropped.to_type(ScalarType.Float32).mean().item<float>();
        // Binomial(20000, 0.3): standard deviation 0.0032; allow 5 sigma.
        Assert.AreEqual(0.3, rate, 0.016, "drop rate");
        Assert.AreEqual(1.0, y.mean().item<float>(), 0.03, "expectation preserved");
        using var never = new StochasticDepth(0);
        never.train();
        Assert.IsTrue(TensorAssert.Identical(x, never.call(x)), "p = 0 is the identity");
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
        Assert.IsTrue(TensorAssert.Identical(model.forward(x), model.forward(x)), "eval is deterministic");
        using var without = ModelRegistry.Create("efficientnet_b0", new ModelOptions { DropRate = 0, DropPathRate = 0 });
        Assert.IsTrue(without.modules().OfType<StochasticDepth>().All(m => m.Probability == 0));
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
        Assert.IsTrue(TensorAssert.Identical(tokens[.., 0].contiguous(), token.forward(x)), "class-token pooling");
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

}
