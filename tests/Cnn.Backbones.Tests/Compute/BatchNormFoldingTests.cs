using Cnn.Backbones.Compute;
using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.Backbones.Tests.Models;
using Cnn.Backbones.Tests.Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Compute;

/// <summary>
/// BatchNorm folded into the convolution before it (<see cref="Backbone.FoldBatchNorm"/>): no-grad eval passes give the unfolded
/// outputs within float32 rounding, with the BatchNorms skipped; parameters, state dict and every other pass are unchanged.
/// </summary>
[TestClass]
public sealed class BatchNormFoldingTests
{
    /// <remarks>
    /// BatchNorm affine parameters and running statistics are randomised (initialisation leaves them 1, 0, 0, 1, where folding
    /// is nearly the identity). Logits and the feature map are compared, both in float32 and with channels-last.
    /// </remarks>
    [TestMethod]
    [DynamicData(nameof(ComputeSettingsTests.FamilyRows), typeof(ComputeSettingsTests))]
    public void FoldedNoGradEvalPassesGiveTheUnfoldedOutputs(string name)
    {
        var spec = new ModelSpec(name);
        using var model = OnnxExportCases.Create(spec);
        int norms = model.modules().OfType<FoldableBatchNorm2d>().Count();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = Input(model, spec);
        var keys = model.state_dict().Select(e => (e.Key, e.Value.shape)).ToArray();
        var referenceLogits = model.call(x);
        var referenceFeatures = model.ForwardFeatures(x);

        int folded = model.FoldBatchNorm();
        Assert.AreEqual(folded, model.modules().OfType<FoldableBatchNorm2d>().Count(n => n.FoldedInto is not null), $"{name}: folded layers");
        Assert.AreEqual(norms > 0, folded > 0, $"{name}: {folded} of {norms} BatchNorms folded");
        Assert.AreEqual(folded > 0, model.IsBatchNormFolded);
        CollectionAssert.AreEqual(keys.Select(k => k.Key).ToArray(), model.state_dict().Keys.ToArray(), $"{name}: state-dict keys unchanged");
        foreach (var settings in new[] { ComputeSettings.Float32, new ComputeSettings(ChannelsLast: true) })
        {
            model.Compute = settings;
            TensorAssert.AssertClose(referenceLogits, model.call(x), $"{name} folded logits ({settings})");
            TensorAssert.AssertClose(referenceFeatures, model.ForwardFeatures(x), $"{name} folded features ({settings})");
        }
    }

    [TestMethod]
    public void FoldingIsASnapshotUsedOnlyByNoGradEvalPassesAndEndsWithTrainingOrLoading()
    {
        TorchRuntime.EnsureLoaded();
        var spec = new ModelSpec("resnet18");
        using var model = OnnxExportCases.Create(spec);
        using var scope = NewDisposeScope();
        var x = Input(model, spec);
        Tensor reference;
        using (no_grad()) reference = model.call(x);
        using var weights = Cnn.Backbones.Weights.StateDict.FromModule(model);

        Assert.AreEqual(20, model.FoldBatchNorm(), "every BatchNorm of resnet18 follows a convolution");
        // Changing the statistics in place does not reach the folded snapshot, which shows the BatchNorms are skipped …
        using (no_grad())
            foreach (var norm in model.modules().OfType<FoldableBatchNorm2d>()) norm.running_var!.TimesInPlace(4);
        using (no_grad()) TensorAssert.AssertClose(reference, model.call(x), "folded, statistics changed afterwards");
        // … while a pass with gradients computes both layers on their own, as in training.
        var withGradients = model.call(x).detach();
        Assert.IsFalse(withGradients.allclose(reference, rtol: 1e-3, atol: 1e-3), "a pass with gradients does not use the folded weights");

        // Training mode ends the folding; so does loading weights.
        model.train();
        Assert.IsFalse(model.IsBatchNormFolded, "train() unfolds");
        model.eval();
        using (no_grad()) Assert.IsTrue(TensorAssert.Identical(withGradients, model.call(x)), "unfolded, the changed statistics apply");
        model.FoldBatchNorm();
        model.LoadWeights(weights);
        Assert.IsFalse(model.IsBatchNormFolded, "loading weights unfolds");
        using (no_grad()) Assert.IsTrue(TensorAssert.Identical(reference, model.call(x)), "the loaded weights apply");
    }

    [TestMethod]
    public void OnlyBatchNormsThatNormaliseAConvolutionsOutputAreFolded()
    {
        TorchRuntime.EnsureLoaded();
        using var densenet = ModelRegistry.Create("densenet121");
        // DenseNet's norm0 follows conv0 and each dense layer's norm2 its 1×1 conv1; norm1 and the transitions' norm take
        // concatenated features before their convolution, as does norm5 before the classifier.
        Assert.AreEqual(1 + 6 + 12 + 24 + 16, densenet.FoldBatchNorm());
        var folded = densenet.named_modules().Where(m => m.module is FoldableBatchNorm2d { FoldedInto: not null }).Select(m => m.name).ToArray();
        Assert.IsTrue(folded.All(n => n == "features.norm0" || n.EndsWith(".norm2", StringComparison.Ordinal)), string.Join(", ", folded.Take(5)));
        using var vit = ModelRegistry.Create("vit_b_16");
        Assert.AreEqual(0, vit.FoldBatchNorm(), "a network without BatchNorm has nothing to fold");
    }

    private static Tensor Input(Backbone model, ModelSpec spec)
    {
        int size = model is VisionTransformer vit ? vit.ImageSize : spec.Quirks.TestSize;
        return randn([2, model.InChannels, size, size], generator: new Generator(3));
    }
}
