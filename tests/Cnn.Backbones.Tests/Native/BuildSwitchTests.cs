using System.Diagnostics;

namespace Cnn.Backbones.Tests.Native;

/// <summary>The documented -p:TorchBackend switch really changes the native package the library references.</summary>
[TestClass]
public sealed class BuildSwitchTests
{
    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Cnn.MLNet.sln"))) directory = directory.Parent;
        return directory?.FullName ?? throw new AssertInconclusiveException("not run from a checkout");
    }

    private static (int Exit, string Output) PackageReferences(string backend)
    {
        var info = new ProcessStartInfo("dotnet", $"msbuild src/Cnn.Backbones/Cnn.Backbones.csproj -getItem:PackageReference -p:TorchBackend={backend}")
        {
            WorkingDirectory = RepositoryRoot(), RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        using var process = Process.Start(info)!;
        string output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output);
    }

    [TestMethod]
    public void CpuIsTheDefaultAndCudaSwitchesThePackage()
    {
        var (cpuExit, cpu) = PackageReferences("cpu");
        Assert.AreEqual(0, cpuExit, cpu);
        StringAssert.Contains(cpu, "\"TorchSharp-cpu\"");
        Assert.IsFalse(cpu.Contains("TorchSharp-cuda-linux", StringComparison.Ordinal), cpu);

        var (cudaExit, cuda) = PackageReferences("cuda");
        Assert.AreEqual(0, cudaExit, cuda);
        StringAssert.Contains(cuda, "\"TorchSharp-cuda-linux\"");
        Assert.IsFalse(cuda.Contains("\"TorchSharp-cpu\"", StringComparison.Ordinal), cuda);
    }
}
