using Cnn.Tests.Shared;
using Cnn.Backbones.Compute;
using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.Backbones.Tests.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Compute;

/// <summary>
/// Channels-last and bfloat16 mixed precision for every family (its smallest registered model): channels-last gives the
/// contiguous outputs and gradients within float tolerance; bfloat16 keeps float32 weights, gradients and outputs and follows
/// the float32 computation within bfloat16's precision.
/// </summary>
[TestClass]
[DoNotParallelize] // same-seed forward passes share the global generator (dropout, stochastic depth)
public sealed class ComputeSettingsTests
{
    /// <summary>The smallest model of each family.</summary>
    public static IEnumerable<object[]> FamilyRows => FamilyCases.SmallestRows;

    /// <remarks>
    /// The output compared is the feature map (every family's convolutional body; a ViT's logits start at zero), at batch 4 from
    /// a seeded initialisation. Outputs agree to float32 rounding (1e-4 of the largest value) in both modes. Gradients are
    /// compared as whole vectors (relative Euclidean norm), not element by element: a ReLU or max-pool input that rounds to the
    /// other side of zero or of a near tie in one layout routes a whole element's gradient differently, a legitimate difference
    /// of the gradient's own size in a few elements (seen on vgg11 and densenet121 in eval mode). Over seeds 1 to 6 the norms
    /// differed by at most 0.4% in eval mode and 3.2% in training mode, where a BatchNorm's backward over batch statistics
    /// subtracts nearly equal sums and magnifies the different summation order (PyTorch 1.13's own channels-last resnet18
    /// differs from its contiguous run by 1% at batch 2); the bounds are 1% and 5%. A layout error gives differences of order 1.
    /// Head dropout is off: its mask is drawn in memory order, so the two layouts drop different (equally likely) units.
    /// </remarks>
    [TestMethod]
    [DynamicData(nameof(FamilyRows))]
    public void ChannelsLastGivesTheContiguousOutputsAndGradients(string name)
    {
        var spec = new ModelSpec(name);
        torch.manual_seed(11);
        using var model = spec.Create(o => o with { DropRate = 0 });
        using var scope = NewDisposeScope();
        var x = Input(model, spec, batch: 4);
        foreach (bool training in new[] { false, true })
        {
            model.Compute = ComputeSettings.Float32;
            var (reference, referenceGradients) = Step(model, x, training);
            model.Compute = new ComputeSettings(ChannelsLast: true);
            var (output, gradients) = Step(model, x, training);
            string mode = training ? "training" : "eval";
            Assert.IsTrue(output.is_contiguous(), $"{name}: a channels-last run returns contiguous outputs");
            TensorAssert.AssertClose(reference, output, $"{name} channels-last {mode} output", 1e-4);
            TensorAssert.AssertNormClose(Flat(referenceGradients, referenceGradients), Flat(referenceGradients, gradients),
                $"{name} channels-last {mode} gradients", training ? 5e-2 : 1e-2);
        }
    }

    /// <remarks>
    /// How close bfloat16 comes to float32 is checked against PyTorch's autocast on every parity model, whose randomised norms
    /// keep activations well scaled (<see cref="ModelParityTests"/>). Here, on each family at random initialisation in training
    /// mode, what must hold exactly is checked: float32 master weights, gradients and outputs, contiguous and finite. The
    /// features' cosine similarity to float32 is only bounded below by 0.7: BatchNorm over the few values of a small batch's last
    /// maps magnifies rounding, and PyTorch's autocast shows the same in the same setting (inception_v3 0.745, googlenet 0.954,
    /// regnet_y_400mf 0.939, resnet18 0.999 at batch 4, 128 px; ours 0.756, 0.956, 0.937, 0.999).
    /// </remarks>
    [TestMethod]
    [DynamicData(nameof(FamilyRows))]
    public void BFloat16KeepsFloat32WeightsAndFollowsTheFloat32Computation(string name)
    {
        var spec = new ModelSpec(name);
        // Auxiliary heads off: they need inputs larger than these (inception_v3: 299 px).
        torch.manual_seed(11);
        using var model = spec.Create(o => o with { DropRate = 0, AuxLogits = spec.Definition.Capabilities.AuxLogits ? false : o.AuxLogits });
        using var scope = NewDisposeScope();
        var x = Input(model, spec, batch: 4, minimumSize: 128);
        var mixed = new ComputeSettings(ScalarType.BFloat16, ChannelsLast: true);
        var (reference, _) = Step(model, x, training: true);
        model.Compute = mixed;
        var (trainOutput, trainGradients) = Step(model, x, training: true);
        Assert.IsTrue(Cosine(reference, trainOutput) > 0.7, $"{name}: bfloat16 features follow float32 (cosine {Cosine(reference, trainOutput):F4})");
        var logits = model.ForwardTrain(x).Logits;
        foreach (var (what, tensor) in new[] { ("features", trainOutput), ("logits", logits) })
        {
            Assert.AreEqual(ScalarType.Float32, tensor.dtype, $"{name}: mixed precision returns float32 {what}");
            Assert.IsTrue(tensor.is_contiguous() && tensor.isfinite().all().item<bool>(), $"{name}: {what} are contiguous and finite");
        }
        foreach (var (key, parameter) in model.named_parameters())
        {
            Assert.AreEqual(ScalarType.Float32, parameter.dtype, $"{name}: the master weight {key} stays float32");
            if (trainGradients.TryGetValue(key, out var grad))
                Assert.IsTrue(grad.dtype == ScalarType.Float32 && grad.isfinite().all().item<bool>(), $"{name}: the gradient of {key} is float32 and finite");
        }
    }

    [TestMethod]
    public void ComputeOverridesAreRestoredAndOnlyReducedTypesAreAccepted()
    {
        TorchRuntime.EnsureLoaded();
        using var model = ModelRegistry.Create("lenet5");
        var bf16 = new ComputeSettings(ScalarType.BFloat16);
        model.Compute = bf16;
        using (model.OverrideCompute(ComputeSettings.Float32)) Assert.AreEqual(ComputeSettings.Float32, model.Compute);
        Assert.AreEqual(bf16, model.Compute);
        Assert.ThrowsExactly<ArgumentException>(() => model.Compute = new ComputeSettings(ScalarType.Float64));
        Assert.AreEqual("bfloat16, channels-last", new ComputeSettings(ScalarType.BFloat16, true).ToString());
    }

    private static Tensor Input(Backbone model, ModelSpec spec, int batch = 2, int minimumSize = 0)
    {
        // ViT (torchvision's, CLIP's) takes its own image size; LeNet-5 only the 28 or 32 pixels it was designed for.
        int size = model is VisionTransformer vit ? vit.ImageSize
            : model is ClipImageBackbone clip ? clip.ImageSize
            : model.PretrainedConfig.InputSize.Height <= 32 ? spec.Quirks.TestSize : Math.Max(spec.Quirks.TestSize, minimumSize);
        torch.manual_seed(3);
        return randn(batch, model.InChannels, size, size);
    }

    // Running statistics of the batch itself (momentum 1 for one training-mode pass), so eval-mode activations are well scaled.
    private static void Calibrate(Backbone model, Tensor x)
    {
        foreach (var norm in model.modules().OfType<TorchSharp.Modules.NormBase>()) norm.momentum = 1.0;
        model.train();
        using (no_grad()) model.ForwardFeatures(x).Dispose();
        foreach (var norm in model.modules().OfType<TorchSharp.Modules.NormBase>()) norm.momentum = 0.1;
    }

    // One forward and backward from a fixed seed (dropout, stochastic depth): the output and every gradient.
    private static (Tensor Output, Dictionary<string, Tensor> Gradients) Step(Backbone model, Tensor x, bool training)
    {
        model.train(training);
        model.zero_grad();
        torch.manual_seed(7);
        var output = model.ForwardFeatures(x);
        using var weights = torch.linspace(-1, 1, output.numel()).reshape(output.shape);
        (output * weights).sum().backward();
        var gradients = model.named_parameters().Where(p => p.parameter.grad is not null)
            .ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        return (output.detach(), gradients);
    }

    // The gradients of the reference's parameters, in its order, as one vector.
    private static Tensor Flat(Dictionary<string, Tensor> order, Dictionary<string, Tensor> gradients) =>
        cat(order.Keys.Select(k => gradients[k].flatten()).ToArray());

    private static double Cosine(Tensor a, Tensor b) =>
        nn.functional.cosine_similarity(a.flatten().unsqueeze(0), b.flatten().unsqueeze(0)).item<float>();
}
