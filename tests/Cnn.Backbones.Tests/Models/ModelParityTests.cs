using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// Numerical parity of every parity case of <see cref="ModelCases"/> with its reference: a seeded reference model with randomised
/// norms, running statistics, layer scales and zero-initialised parameters is saved with <c>torch.save</c>, loaded strictly here,
/// and every feature stage, the features, the pre-logits and the logits must agree to max|diff| ≤ 1e-4 · max|ref| in eval mode.
/// Fixtures of large models are deleted after their test, so they never pile up on disk.
/// </summary>
[TestClass]
public sealed class ModelParityTests
{
    public static IEnumerable<object[]> Cases => ModelCases.ParityRows;

    public static IEnumerable<object[]> ResampleCases => ModelCases.ResampleRows;

    [TestMethod]
    [DynamicData(nameof(Cases))]
    public void EvalOutputsMatchTheReference(string id)
    {
        TorchRuntime.EnsureLoaded();
        var c = ModelCases.ParityCase(id);
        var fixture = ModelReference.Fixture(c, out bool owned);
        try
        {
            using var model = ModelRegistry.Create(c.Spec.Name, c.Spec.Options());
            var report = model.LoadWeights(fixture.WeightsPath, strict: true);
            Assert.IsTrue(report.IsComplete, report.ToString());
            Assert.AreEqual(model.state_dict().Count, report.Loaded);
            model.eval();

            using var outputs = fixture.LoadOutputs();
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            var input = outputs["input"];
            var (stages, features) = model.ForwardStagesAndFeatures(input);
            Assert.AreEqual(fixture.StageCount, stages.Count, $"{id}: number of feature stages");
            for (int i = 0; i < stages.Count; i++)
                TensorAssert.AssertClose(outputs[$"stage{i}"], stages[i], $"{id} {model.FeatureInfo[i].ModuleName}");
            TensorAssert.AssertClose(outputs["features"], features, $"{id} features");
            TensorAssert.AssertClose(outputs["features"], model.ForwardFeatures(input), $"{id} ForwardFeatures");
            TensorAssert.AssertClose(outputs["pre_logits"], model.ForwardHead(features, preLogits: true), $"{id} pre_logits");
            TensorAssert.AssertClose(outputs["logits"], model.forward(input), $"{id} logits");
            var train = model.ForwardTrain(input);
            Assert.IsEmpty(train.Auxiliary, "eval mode has no auxiliary outputs");
            TensorAssert.AssertClose(outputs["logits"], train.Logits, $"{id} ForwardTrain logits in eval");
        }
        finally
        {
            if (owned) fixture.Dispose();
        }
    }

    [TestMethod]
    [DynamicData(nameof(ResampleCases))]
    public void WeightsLoadIntoAnotherImageSizeWithTimmsBicubicPositionEmbeddingResampling(string id)
    {
        TorchRuntime.EnsureLoaded();
        var c = ModelCases.ParityCase(id);
        int size = c.Spec.Quirks.ResampleSize!.Value;
        var fixture = ModelReference.Fixture(c, out bool owned);
        try
        {
            using var model = ModelRegistry.Create(c.Spec.Name, c.Spec.Options(o => o with { ImageSize = size }));
            var vit = (VisionTransformer)model;
            Assert.AreEqual(size / vit.Architecture.PatchSize, vit.GridSize);
            var report = model.LoadWeights(fixture.WeightsPath, strict: true);
            Assert.IsTrue(report.IsComplete, report.ToString());
            model.eval();
            using var outputs = fixture.LoadOutputs();
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            TensorAssert.AssertClose(outputs["resampled_pos"], model.state_dict()["encoder.pos_embedding"], "resampled pos_embedding");
            TensorAssert.AssertClose(outputs["resampled_logits"], model.forward(outputs["resampled_input"]), $"{c.Spec}@{size} logits");
            // The model refuses inputs of the size its embedding was not made for.
            var wrong = Assert.ThrowsExactly<ArgumentException>(() => model.forward(zeros(1, 3, c.Size, c.Size)));
            StringAssert.Contains(wrong.Message, "ImageSize");
        }
        finally
        {
            if (owned) fixture.Dispose();
        }
    }
}
