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
        y.square().sum().backward();
        Assert.IsNotNull(x.grad);
        Assert.IsNotNull(conv.weight!.grad);
        Assert.IsTrue(conv.weight.grad.abs().sum().item<float>() > 0f, "weight gradient must be non-zero");
        // The analytic gradient of sum(y^2) with respect to the bias is 2 * sum(y) over batch and space.
        var expectedBiasGrad = (y.detach() * 2).sum(new long[] { 0, 2, 3 });
        Assert.IsTrue(allclose(conv.bias!.grad!, expectedBiasGrad, rtol: 1e-4, atol: 1e-4), TorchRuntime.Status);
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
