using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Cnn.Tests.Shared;

/// <summary>
/// Samples, at the end of each training epoch, the number of live TorchSharp tensors in the process and the
/// resident memory after the managed and native heaps have given back what they can, then judges whether
/// either grows once the run has warmed up. Tests that use it must be <c>[DoNotParallelize]</c>: other tests'
/// tensors and allocations would otherwise show up in the counts.
/// </summary>
internal sealed class EpochMemoryProbe
{
    private readonly List<long> liveTensors = new();
    private readonly List<long> residentBytes = new();

    /// <summary>Live tensor counts, one per sampled epoch.</summary>
    public IReadOnlyList<long> LiveTensors => liveTensors;

    /// <summary>Call from the epoch callback.</summary>
    public void Sample()
    {
        for (int i = 0; i < 2; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        if (OperatingSystem.IsLinux()) malloc_trim(UIntPtr.Zero);
        liveTensors.Add(TorchSharp.torch.Tensor.TotalCount);
        residentBytes.Add(Process.GetCurrentProcess().WorkingSet64);
    }

    /// <summary>
    /// Fails when tensors outlive the epoch that made them (any growth in the live count after
    /// <paramref name="warmupEpochs"/>) or when resident memory at the end exceeds the highest warm-up sample by more
    /// than <paramref name="residentSlackMb"/>.
    /// </summary>
    public void AssertFlat(int warmupEpochs = 2, long residentSlackMb = 48)
    {
        Assert.IsGreaterThan(warmupEpochs + 2, liveTensors.Count, "the probe needs several epochs after warm-up");
        string tensors = string.Join(", ", liveTensors);
        for (int epoch = warmupEpochs + 1; epoch < liveTensors.Count; epoch++)
            Assert.IsLessThanOrEqualTo(liveTensors[warmupEpochs], liveTensors[epoch],
                $"live tensors grew after epoch {warmupEpochs + 1} (per epoch: {tensors}): something made in the loop is not disposed");

        long warm = residentBytes.Take(warmupEpochs + 1).Max();
        long growth = residentBytes[^1] - warm;
        Assert.IsLessThan(residentSlackMb * 1024 * 1024, growth,
            $"resident memory grew by {growth / (1024 * 1024)} MB after warm-up: {string.Join(", ", residentBytes.Select(r => r / (1024 * 1024)))} MB");
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int malloc_trim(UIntPtr pad);
}
