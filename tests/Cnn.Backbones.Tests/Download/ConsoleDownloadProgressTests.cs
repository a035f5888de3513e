using Cnn.Tests.Shared;
using Cnn.Backbones.Weights.Download;

namespace Cnn.Backbones.Tests.Download;

[TestClass]
public sealed class ConsoleDownloadProgressTests
{
    private static readonly Uri Url = new(WeightStoreOptions.TorchvisionBaseUrl, "resnet50-11ad3fa6.pth");

    private static DownloadProgress At(DownloadStage stage, long received) =>
        new(stage, Url, "resnet50-11ad3fa6.pth", received, 100L << 20, 10 << 20, TimeSpan.FromSeconds(5));

    [TestMethod]
    public void OnATerminal_ABarWithBytesRateAndTimeLeft_RedrawnInPlace()
    {
        var writer = new StringWriter();
        var progress = new ConsoleDownloadProgress(writer, interactive: true);

        progress.Report(At(DownloadStage.Downloading, 50L << 20));
        progress.Report(At(DownloadStage.Downloading, 75L << 20));
        progress.Report(At(DownloadStage.Completed, 100L << 20));

        string text = writer.ToString();
        Assert.AreEqual(3, text.Count(c => c == '\r'), "each report redraws the same line");
        Assert.AreEqual(1, text.Count(c => c == '\n'), "one line in the end");
        StringAssert.Contains(text, "resnet50-11ad3fa6.pth [############............] 50.0 MiB/100.0 MiB 10.0 MiB/s 0:05 left");
        StringAssert.Contains(text, "75.0 MiB/100.0 MiB 10.0 MiB/s 0:02 left");
        StringAssert.Contains(text, "100.0 MiB/100.0 MiB 10.0 MiB/s done");
    }

    [TestMethod]
    public void Redirected_OneLinePerFile()
    {
        var writer = new StringWriter();
        var progress = new ConsoleDownloadProgress(writer, interactive: false);

        progress.Report(At(DownloadStage.Downloading, 50L << 20));
        progress.Report(At(DownloadStage.Completed, 100L << 20));

        string[] lines = writer.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.AreEqual(1, lines.Length);
        Assert.AreEqual($"Downloaded resnet50-11ad3fa6.pth (100.0 MiB in 5.0 s, 10.0 MiB/s) from {Url}", lines[0]);
    }

    [TestMethod]
    public void WaitingForAnotherProcess_IsOneLine()
    {
        var writer = new StringWriter();
        new ConsoleDownloadProgress(writer, interactive: false).Report(At(DownloadStage.WaitingForOtherProcess, 0));
        StringAssert.StartsWith(writer.ToString(), "Waiting for another process to finish downloading resnet50-11ad3fa6.pth");
    }
}
