using System.Diagnostics;
using Cnn.Backbones.Native;

namespace Cnn.MLNet.Tests.Cli;

[TestClass]
public sealed class NativeRuntimeErrorTests
{
    [TestMethod]
    public void AnUnloadableNativeLibraryGivesOneActionableLine()
    {
        TorchRuntime.EnsureLoaded();
        if (TorchRuntime.PatchedLibraryPath is null)
            Assert.Inconclusive($"This machine's libstdc++ needs no compatible copy ({TorchRuntime.Status}); the failure path cannot be provoked here.");
        string cli = Path.Combine(AppContext.BaseDirectory, "cnn.dll");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(cli);
        info.ArgumentList.Add("models");
        info.Environment["CNN_MLNET_NATIVE_CACHE"] = "/proc/cnn-mlnet-unwritable";
        using var process = Process.Start(info)!;
        string stderr = process.StandardError.ReadToEnd();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.AreEqual(1, process.ExitCode, stderr);
        var lines = stderr.Trim().Split('\n');
        Assert.AreEqual(1, lines.Length, stderr);
        StringAssert.Contains(stderr, "GLIBCXX_3.4.32");
        StringAssert.Contains(stderr, "CNN_MLNET_NATIVE_CACHE");
        Assert.IsFalse(stderr.Contains("TypeInitializationException", StringComparison.Ordinal), stderr);
    }

    [TestMethod]
    public void TheNativePatchOptOutMakesNoCopyAndSaysSo()
    {
        TorchRuntime.EnsureLoaded();
        if (TorchRuntime.PatchedLibraryPath is null)
            Assert.Inconclusive($"This machine's libstdc++ needs no compatible copy ({TorchRuntime.Status}); the opt-out changes nothing here.");
        string cache = Path.Combine(Path.GetTempPath(), $"cnn-no-patch-{Guid.NewGuid():N}");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "cnn.dll"));
        info.ArgumentList.Add("models");
        info.Environment["CNN_MLNET_NO_NATIVE_PATCH"] = "1";
        info.Environment["CNN_MLNET_NATIVE_CACHE"] = cache;
        using var process = Process.Start(info)!;
        string stderr = process.StandardError.ReadToEnd();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.AreEqual(1, process.ExitCode, stderr);
        Assert.AreEqual(1, stderr.Trim().Split('\n').Length, stderr);
        StringAssert.Contains(stderr, "CNN_MLNET_NO_NATIVE_PATCH=1");
        Assert.IsFalse(Directory.Exists(cache), "the opt-out must not write the compatible copy");
    }
}
