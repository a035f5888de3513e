using System.Globalization;
using Cnn.MLNet.Training;
using Spectre.Console;

namespace Cnn.Cli.Output;

/// <summary>
/// What <c>cnn train</c> and <c>cnn distill</c> show while fitting: on an interactive terminal a progress bar within each epoch
/// (batches, images/s, running loss, time left; Spectre.Console), one line per epoch in every case (above the bar, or alone when
/// the output is redirected or <c>--quiet</c>), and a CSV of the epochs' metrics written as they finish (timm's
/// <c>summary.csv</c>), so a run that dies keeps its curve.
/// </summary>
internal sealed class FitReporter : IDisposable
{
    private readonly TextWriter _stdout;
    private readonly StreamWriter _csv;
    private readonly bool _bar;
    private ProgressTask? _task;

    /// <param name="stdout">Where epoch lines go.</param>
    /// <param name="csvPath">The metrics CSV to (over)write.</param>
    /// <param name="header">Its column names.</param>
    /// <param name="quiet">No progress bar, only epoch lines.</param>
    public FitReporter(TextWriter stdout, string csvPath, IReadOnlyList<string> header, bool quiet)
    {
        _stdout = stdout;
        CsvPath = Path.GetFullPath(csvPath);
        // Under mpirun only rank 0 writes the CSV (every rank would write the same file).
        _csv = Cnn.MLNet.Distributed.MpiLaunch.IsWorker ? StreamWriter.Null : new StreamWriter(CsvPath, append: false) { AutoFlush = true };
        _csv.WriteLine(string.Join(',', header));
        _bar = !quiet && ReferenceEquals(stdout, Console.Out) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
    }

    /// <summary>Where the metrics CSV is written.</summary>
    public string CsvPath { get; }

    /// <summary>The metrics CSV beside a model file: <c>model.zip</c> → <c>model.metrics.csv</c>.</summary>
    public static string CsvPathFor(string modelPath) => Path.ChangeExtension(modelPath, ".metrics.csv");

    /// <summary>Runs <paramref name="fit"/>, inside a live progress display when there is a terminal to show it on.</summary>
    public T Run<T>(Func<T> fit)
    {
        if (!_bar) return fit();
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                _task = context.AddTask("starting", maxValue: 1);
                result = fit();
            });
        _task = null;
        return result;
    }

    /// <summary>Shows an optimizer step's progress on the bar (nothing without one).</summary>
    public void Batch(BatchProgress p)
    {
        if (_task is not { } task) return;
        task.MaxValue = Math.Max(p.Batches, 1);
        task.Value = p.Batch;
        task.Description = string.Create(CultureInfo.InvariantCulture,
            $"epoch {p.Epoch}/{p.Epochs}  batch {p.Batch}/{p.Batches}  loss {p.RunningLoss:0.0000}  {p.ImagesPerSecond:0} img/s");
    }

    /// <summary>The epochs reported so far, as the training-curve plot draws them.</summary>
    public List<Plots.TrainingCurvePoint> Curve { get; } = [];

    /// <summary>Prints an epoch's line, appends its CSV row and keeps its point of the curves.</summary>
    public void Epoch(string line, IEnumerable<object?> row, Plots.TrainingCurvePoint point)
    {
        Curve.Add(point);
        if (_task is not null) AnsiConsole.WriteLine(line);
        else
        {
            _stdout.WriteLine(line);
            _stdout.Flush();
        }
        _csv.WriteLine(string.Join(',', row.Select(Cell)));
    }

    private static string Cell(object? value) => value switch
    {
        null => "",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary>Draws the curves of the epochs so far beside <paramref name="modelPath"/> (<c>model.curves.png</c>) and returns its path.</summary>
    public string SaveCurves(string modelPath)
    {
        string path = Path.GetFullPath(Path.ChangeExtension(modelPath, ".curves.png"));
        Plots.TrainingCurvesPlot.Save(Curve, path);
        return path;
    }

    /// <summary>Closes the CSV.</summary>
    public void Dispose() => _csv.Dispose();
}
