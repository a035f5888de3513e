using System.Globalization;

namespace Cnn.Backbones.Weights.Download;

/// <summary>
/// Shows downloads on a console: on a terminal a bar redrawn in place (bytes, rate, time left); when the output is redirected
/// (a log, CI) one line per finished file. Waiting for another process is one line either way.
/// </summary>
public sealed class ConsoleDownloadProgress : IProgress<DownloadProgress>
{
    private const int BarWidth = 24;
    private readonly TextWriter _writer;
    private readonly bool _interactive;
    private readonly object _gate = new();
    private int _lastLength;

    /// <summary>Reports on standard error: a bar when it is a terminal, else one line per file.</summary>
    public ConsoleDownloadProgress()
        : this(Console.Error, !Console.IsErrorRedirected)
    {
    }

    /// <summary>Reports on <paramref name="writer"/>.</summary>
    /// <param name="writer">Where to write.</param>
    /// <param name="interactive">True to redraw a bar in place (a terminal), false for one line per finished file.</param>
    public ConsoleDownloadProgress(TextWriter writer, bool interactive)
    {
        ArgumentNullException.ThrowIfNull(writer);
        _writer = writer;
        _interactive = interactive;
    }

    /// <inheritdoc/>
    public void Report(DownloadProgress value)
    {
        lock (_gate)
        {
            switch (value.Stage)
            {
                case DownloadStage.WaitingForOtherProcess:
                    EndBar();
                    _writer.WriteLine($"Waiting for another process to finish downloading {value.FileName} ({value.Url})...");
                    break;
                case DownloadStage.Downloading when _interactive:
                    Draw(Bar(value));
                    break;
                case DownloadStage.Completed:
                    if (_interactive) Draw(Bar(value));
                    EndBar();
                    if (!_interactive)
                        _writer.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"Downloaded {value.FileName} ({Size(value.BytesReceived)} in {value.Elapsed.TotalSeconds:0.0} s, {Size((long)value.BytesPerSecond)}/s) from {value.Url}"));
                    break;
            }
            _writer.Flush();
        }
    }

    /// <summary>The bar line for one report, e.g. <c>resnet50-11ad3fa6.pth [#####.......] 45.2 MiB/97.8 MiB 12.3 MiB/s 0:04 left</c>.</summary>
    internal static string Bar(DownloadProgress value)
    {
        string bar = value.Fraction is { } fraction
            ? "[" + new string('#', (int)(fraction * BarWidth)).PadRight(BarWidth, '.') + "] "
            : "";
        string size = value.TotalBytes is { } total ? $"{Size(value.BytesReceived)}/{Size(total)}" : Size(value.BytesReceived);
        string left = value.Stage == DownloadStage.Completed ? "done"
            : value.Remaining is { } remaining ? $"{(int)remaining.TotalMinutes}:{remaining.Seconds:00} left" : "";
        return string.Create(CultureInfo.InvariantCulture, $"{value.FileName} {bar}{size} {Size((long)value.BytesPerSecond)}/s {left}").TrimEnd();
    }

    private void Draw(string line)
    {
        _writer.Write("\r" + line.PadRight(_lastLength));
        _lastLength = line.Length;
    }

    private void EndBar()
    {
        if (_lastLength == 0) return;
        _writer.WriteLine();
        _lastLength = 0;
    }

    private static string Size(long bytes) => bytes switch
    {
        >= 1L << 30 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):0.00} GiB"),
        >= 1L << 20 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):0.0} MiB"),
        >= 1L << 10 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.0} KiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes} B"),
    };
}
