using System.Diagnostics;

namespace Cnn.Backbones.Tests.Native;

/// <summary>
/// The backend is the application's choice: the library references the managed TorchSharp package only, and the
/// repository's applications (tests, the cnn tool) add the CPU backend package.
/// </summary>
[TestClass]
public sealed class BuildSwitchTests
{
    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Cnn.MLNet.sln"))) directory = directory.Parent;
        return directory?.FullName ?? throw new AssertInconclusiveException("not run from a checkout");
    }

    private static (int Exit, string Output) PackageReferences(string project)
    {
        var info = new ProcessStartInfo("dotnet", $"msbuild {project} -getItem:PackageReference")
        {
            WorkingDirectory = RepositoryRoot(), RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        using var process = Process.Start(info)!;
        string output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output);
    }

    [TestMethod]
    public void LibrariesReferenceTheManagedPackageAndApplicationsTheBackend()
    {
        foreach (var library in new[] { "src/Cnn.Backbones/Cnn.Backbones.csproj", "src/Cnn.MLNet/Cnn.MLNet.csproj" })
        {
            var (exit, output) = PackageReferences(library);
            Assert.AreEqual(0, exit, output);
            Assert.IsFalse(output.Contains("libtorch", StringComparison.OrdinalIgnoreCase), $"{library} must not pick a backend: {output}");
            Assert.IsFalse(output.Contains("TorchSharp-", StringComparison.OrdinalIgnoreCase), $"{library} must not pick a backend: {output}");
        }
        StringAssert.Contains(PackageReferences("src/Cnn.Backbones/Cnn.Backbones.csproj").Output, "\"TorchSharp\"");
        var (cliExit, cli) = PackageReferences("src/Cnn.Cli/Cnn.Cli.csproj");
        Assert.AreEqual(0, cliExit, cli);
        StringAssert.Contains(cli, "\"libtorch-cpu-linux-x64\"");
    }
}
