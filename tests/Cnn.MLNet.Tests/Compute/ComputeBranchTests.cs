using Cnn.Backbones.Compute;
using Cnn.Backbones.Native;
using Cnn.MLNet.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Tests.Compute;

/// <summary>
/// Which branch of Auto this machine takes: whether the oneDNN guard capped libtorch (then float32 everywhere) or oneDNN runs
/// its bfloat16 kernels (then Auto trains in bfloat16 at 64 px and more). <c>.ci/run</c> runs this first with its output shown,
/// so a CI log says which arithmetic the tests that leave Auto alone ran in.
/// </summary>
[TestClass]
public sealed class ComputeBranchTests
{
    [TestMethod]
    public void TheBranchOfAutoFollowsTheOneDnnCap()
    {
        TorchRuntime.EnsureLoaded();
        var (auto, reason) = ComputeSelection.Resolve(CnnPrecision.Auto, CnnMemoryFormat.Auto, CPU, "resnet18", ComputeSelection.MinimumAutoSize);
        string flags = CpuFeatures.BFloat16InstructionSets.Count == 0 ? "none" : string.Join(", ", CpuFeatures.BFloat16InstructionSets);
        Console.WriteLine($"oneDNN guard: {TorchRuntime.OneDnnStatus}; bfloat16 CPU flags: {flags}; native bfloat16 for oneDNN: {CpuFeatures.HasNativeBFloat16}; " +
                          $"Auto for resnet18 at {ComputeSelection.MinimumAutoSize} px and more: {auto} ({reason})");

        if (Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA") is { } cap)
            StringAssert.StartsWith(TorchRuntime.OneDnnStatus, $"ONEDNN_MAX_CPU_ISA={cap} set by the environment", "a cap the user set wins");
        else
            Assert.IsTrue(TorchRuntime.OneDnnStatus == "not needed" || TorchRuntime.OneDnnStatus.StartsWith("ONEDNN_MAX_CPU_ISA=AVX:", StringComparison.Ordinal),
                TorchRuntime.OneDnnStatus);
        if (Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA") == "AVX" || TorchRuntime.OneDnnStatus.StartsWith("ONEDNN_MAX_CPU_ISA=AVX:", StringComparison.Ordinal))
            Assert.IsFalse(CpuFeatures.HasNativeBFloat16, "oneDNN capped at AVX has no bfloat16 kernels");
        Assert.AreEqual(CpuFeatures.HasNativeBFloat16 ? ScalarType.BFloat16 : null, auto.ReducedType, reason);
    }
}
