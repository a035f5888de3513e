using System.Diagnostics;
using System.Globalization;
using Cnn.Cli.Inference;
using Cnn.Cli.Output;
using Cnn.MLNet.Persistence;
using Microsoft.ML;

namespace Cnn.Cli.Commands;

/// <summary>Fits a training pipeline that Ctrl+C stops at the next batch, then saves it as one pipeline file.</summary>
internal static class CancellableFit
{
    /// <summary>Exit code of a run cancelled by Ctrl+C (128 + SIGINT), as shells report it.</summary>
    public const int CancelledExitCode = 130;

    /// <summary>
    /// Builds the pipeline with a cancellation token wired to Ctrl+C, fits it on <paramref name="data"/> and saves it to
    /// <paramref name="output"/>. Returns false (after one line on <paramref name="stderr"/>) when Ctrl+C cancelled the fit:
    /// nothing is saved then.
    /// </summary>
    public static bool FitAndSave(string verb, string activity, MLContext ml, IDataView data, string output, bool force,
        Func<CancellationToken, IEstimator<ITransformer>> buildPipeline, FitReporter reporter, TextWriter stdout, TextWriter stderr, Stopwatch clock)
    {
        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true; // let the training loop stop at the next batch and exit normally
            cancel.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        ITransformer model;
        try
        {
            stdout.WriteLine($"{activity}… (Ctrl+C cancels)");
            stdout.Flush();
            model = reporter.Run(() => buildPipeline(cancel.Token).Fit(data));
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            stderr.WriteLine($"cnn {verb}: cancelled by Ctrl+C after {clock.Elapsed.TotalSeconds:0}s; nothing was saved.");
            return false;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }

        try
        {
            if (Cnn.MLNet.Distributed.MpiLaunch.IsWorker) return true; // under mpirun only rank 0 saves
            CnnPipelineFile.Save(ml, model, data.Schema, output, overwriteReadOnly: force);
        }
        finally
        {
            foreach (var stage in PipelineModel.Stages(model).OfType<IDisposable>()) stage.Dispose();
        }
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"saved: {Path.GetFullPath(output)} ({new FileInfo(output).Length / (1024.0 * 1024.0):0.0} MB)"));
        return true;
    }
}
