using Cnn.Backbones.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Native;

[TestClass]
public sealed class TorchRuntimeTests
{
    [TestMethod]
    public void TorchSharpLoadsAndRunsConvolutionForwardAndBackward()
    {
        TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        torch.manual_seed(1);
        var conv = nn.Conv2d(3, 4, 3, padding: 1);
        var x = randn(2, 3, 8, 8, requires_grad: true);
        var y = conv.forward(x);
        CollectionAssert.AreEqual(new long[] { 2, 4, 8, 8 }, y.shape);
        (y * y).sum().backward();
        Assert.IsNotNull(x.grad);
        Assert.IsNotNull(conv.weight!.grad);
        Assert.IsTrue(conv.weight.grad.abs().sum().item<float>() > 0f, "weight gradient must be non-zero");
        // The analytic gradient of sum(y^2) with respect to the bias is 2 * sum(y) over batch and space.
        var expectedBiasGrad = y.detach().Times(2).sum(new long[] { 0, 2, 3 });
        Assert.IsTrue(allclose(conv.bias!.grad!, expectedBiasGrad, rtol: 1e-4, atol: 1e-4), TorchRuntime.Status);
    }

    /// <summary>
    /// float32 convolutions agree with float64 on this processor, for channel counts that are and are not multiples of the
    /// vector width: on a processor with AVX-512 that hides its cache geometry, libtorch 2.10's oneDNN computed the 24→24 one
    /// 20–37% wrong until <c>OneDnnGuard</c> capped it at AVX (this test failed there without the guard).
    /// </summary>
    [TestMethod]
    public void Float32ConvolutionsAgreeWithFloat64()
    {
        TorchRuntime.EnsureLoaded();
        var generator = new Generator(1);
        foreach (var (input, output, kernel, stride) in new[] { (3, 24, 3, 2), (24, 24, 3, 1), (40, 40, 3, 1), (3, 64, 7, 2), (64, 64, 3, 1), (120, 120, 5, 1) })
        {
            using var scope = NewDisposeScope();
            var x = randn(new long[] { 4, input, 32, 32 }, generator: generator);
            var w = randn(new long[] { output, input, kernel, kernel }, generator: generator);
            long[] strides = [stride, stride], padding = [kernel / 2, kernel / 2];
            var single = nn.functional.conv2d(x, w, null, strides, padding);
            var exact = nn.functional.conv2d(x.to(ScalarType.Float64), w.to(ScalarType.Float64), null, strides, padding);
            double relative = (single.to(ScalarType.Float64) - exact).abs().max().item<double>() / exact.abs().max().item<double>();
            Assert.IsTrue(relative < 1e-5, $"conv {input}->{output} {kernel}x{kernel}/{stride}: float32 is {relative:G3} from float64 (oneDNN: {TorchRuntime.OneDnnStatus})");
        }
    }

    [TestMethod]
    public void StatusSaysWhatWasDone()
    {
        TorchRuntime.EnsureLoaded();
        StringAssert.Matches(TorchRuntime.Status, new System.Text.RegularExpressions.Regex("^(patched copy at|not needed)"));
        if (TorchRuntime.PatchedLibraryPath is { } path)
        {
            // The copy must have every libstdc++ need either met or weak, and must not be the NuGet original.
            Assert.IsFalse(path.Contains(Path.Combine(".nuget", "packages")), path);
            var needs = ElfImage.Load(path).ReadVersionNeeds();
            Assert.IsTrue(needs.Any(n => n.Version == "GLIBCXX_3.4.32" && n.IsWeak));
        }
    }
}
