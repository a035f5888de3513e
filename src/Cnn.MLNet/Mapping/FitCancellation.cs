using System.Reflection;
using Microsoft.ML.Runtime;

namespace Cnn.MLNet.Mapping;

/// <summary>
/// The cancellation of one <c>Fit</c>: the options' <see cref="CancellationToken"/>, or the <c>MLContext</c>'s own
/// <c>CancelExecution()</c> (public through the Microsoft.ML.Experimental package), whichever comes first.
/// </summary>
/// <remarks>Microsoft.ML 5 keeps a host's <c>IsCanceled</c> flag behind an internal interface (<c>ICancelable</c>), so it is
/// read by reflection: at every <see cref="ThrowIfCancellationRequested"/> (the training loops call it before each batch) and,
/// for the work in between (reading the data, the teacher's pass), by a timer every <see cref="PollInterval"/>, which a busy
/// thread pool may delay. Where that interface is not found, only the token counts.</remarks>
internal sealed class FitCancellation : IDisposable
{
    /// <summary>How often the host's cancellation flag is read.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(20);

    private readonly CancellationTokenSource _source;
    private readonly Func<bool>? _isHostCanceled;
    private readonly Timer? _poll;

    private FitCancellation(CancellationToken token, Func<bool>? isHostCanceled)
    {
        _source = CancellationTokenSource.CreateLinkedTokenSource(token);
        _isHostCanceled = isHostCanceled;
        if (isHostCanceled is not null)
            _poll = new Timer(_ => Poll(), null, TimeSpan.Zero, PollInterval);
    }

    /// <summary>Cancelled by the options' token or by the host's cancellation.</summary>
    public CancellationToken Token => _source.Token;

    /// <summary>Starts watching <paramref name="environment"/> (the MLContext, when the estimator has it) and <paramref name="token"/>.</summary>
    /// <param name="environment">The ML.NET host environment, or null.</param>
    /// <param name="name">Name of the host registered for this fit (e.g. <c>CnnTrainer</c>).</param>
    /// <param name="token">The options' token.</param>
    public static FitCancellation Start(IHostEnvironment? environment, string name, CancellationToken token)
    {
        if (environment is null) return new FitCancellation(token, null);
        var host = environment.Register(name);
        var flag = host.GetType().GetInterfaces()
            .FirstOrDefault(i => i.FullName == "Microsoft.ML.Runtime.ICancelable")?
            .GetProperty("IsCanceled", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
        return new FitCancellation(token, flag is null ? null : () => flag.GetValue(host) is true);
    }

    /// <summary>Throws <see cref="OperationCanceledException"/> when the token or the host has been cancelled.</summary>
    public void ThrowIfCancellationRequested()
    {
        if (!_source.IsCancellationRequested && _isHostCanceled?.Invoke() == true) _source.Cancel();
        _source.Token.ThrowIfCancellationRequested();
    }

    private void Poll()
    {
        try
        {
            if (!_source.IsCancellationRequested && _isHostCanceled!()) _source.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The fit ended between the timer's tick and this call.
        }
    }

    /// <summary>Stops watching.</summary>
    public void Dispose()
    {
        _poll?.Dispose();
        _source.Dispose();
    }
}
