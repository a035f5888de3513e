using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Models;

/// <summary>The shared initialiser <see cref="Layers.TruncatedNormal"/> against PyTorch's <c>nn.init.trunc_normal_</c>.</summary>
[TestClass]
public sealed class LayersTests
{
    private static readonly (double Mean, double Std, double A, double B)[] Cases =
    [
        (0, 0.02, -2, 2),       // ConvNeXt / ViT: bounds far outside the spread
        (0, 0.01, -2, 2),       // GoogLeNet
        (0, 1, -1, 2),          // a truncation that matters, asymmetric
        (0.5, 1, 0, 1),         // a window narrower than the spread
        (0, 1, 1, 3),           // one tail only: the mean lies outside [a, b]
        (0, 0.02, -0.04, 0.04), // timm's ±2σ truncation
    ];

    [TestMethod]
    public void SamplesStayWithinTheBoundsAndFollowPyTorchsTruncNormalStatistics()
    {
        TorchRuntime.EnsureLoaded();
        var reference = ModelReference.TruncatedNormalStatistics(Cases);
        const int n = 1_000_000;
        manual_seed(5);
        for (int i = 0; i < Cases.Length; i++)
        {
            var (mean, std, a, b) = Cases[i];
            string what = $"trunc_normal(mean {mean}, std {std}, [{a}, {b}])";
            using var scope = NewDisposeScope();
            var samples = empty(n);
            Layers.TruncatedNormal(samples, mean, std, a, b);
            Assert.IsFalse(samples.isnan().any().item<bool>() || samples.isinf().any().item<bool>(), $"{what}: finite values");
            Assert.IsTrue(samples.min().item<float>() >= a && samples.max().item<float>() <= b,
                $"{what}: samples in [{samples.min().item<float>()}, {samples.max().item<float>()}] leave the bounds");
            var expected = reference[i];
            Assert.IsTrue(expected.Min >= a && expected.Max <= b, $"{what}: PyTorch's samples stay inside too");
            // Two independent samples of a million: the standard error of their means' difference is std·sqrt(2/n); allow 6 of them.
            double tolerance = 6 * expected.Std * Math.Sqrt(2.0 / n);
            Assert.AreEqual(expected.Mean, samples.to_type(ScalarType.Float64).mean().item<double>(), tolerance, $"{what}: mean");
            Assert.AreEqual(expected.Std, samples.to_type(ScalarType.Float64).std().item<double>(), tolerance, $"{what}: std");
        }
    }

    [TestMethod]
    public void TheTruncatedMeanIsTheAnalyticOne()
    {
        TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        manual_seed(1);
        var wide = empty(200000);
        Layers.TruncatedNormal(wide, mean: 0, std: 1, a: -1, b: 2);
        // Mean of N(0,1) truncated to [-1, 2]: (φ(-1) - φ(2)) / (Φ(2) - Φ(-1)).
        static double Phi(double x) => Math.Exp(-x * x / 2) / Math.Sqrt(2 * Math.PI);
        double expected = (Phi(-1) - Phi(2)) / (0.9772498680518208 - 0.15865525393145707);
        Assert.AreEqual(expected, wide.mean().item<float>(), 0.01);
    }

    [TestMethod]
    public void InvalidSpreadsOrBoundsAreRejected()
    {
        TorchRuntime.EnsureLoaded();
        using var t = empty(10);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Layers.TruncatedNormal(t, 0, 0, -2, 2));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Layers.TruncatedNormal(t, 0, 1, 2, -2));
    }
}
