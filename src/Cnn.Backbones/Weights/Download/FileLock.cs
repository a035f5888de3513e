using System.Diagnostics;

namespace Cnn.Backbones.Weights.Download;

/// <summary>
/// An exclusive lock between processes (and threads): a lock file opened with <see cref="FileShare.None"/>, which .NET backs
/// with <c>flock</c> on Unix (the call Python's <c>filelock</c>, used by huggingface_hub, makes) and a sharing lock on Windows.
/// The operating system releases it when its holder exits, however it exits. The file itself stays, as filelock leaves its files.
/// </summary>
internal static class FileLock
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(200);

    /// <summary>Takes the lock, waiting while another holds it; <paramref name="onWait"/> runs once when waiting starts.</summary>
    public static async Task<IDisposable> AcquireAsync(string lockPath, TimeSpan timeout, Uri url, Action onWait, CancellationToken cancellation)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw NotWritable(lockPath, url, e);
        }
        var clock = Stopwatch.StartNew();
        bool waited = false;
        while (true)
        {
            cancellation.ThrowIfCancellationRequested();
            try
            {
                return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1);
            }
            catch (IOException e) when (IsHeldByAnother(e))
            {
                if (!waited)
                {
                    waited = true;
                    onWait();
                }
                if (clock.Elapsed > timeout)
                    throw new WeightDownloadException(WeightDownloadFailure.LockTimeout,
                        $"Another process has been downloading {url} into the cache for more than {timeout} (it holds the lock {lockPath}). " +
                        "Wait for it to finish, or stop it and try again.", url, lockPath, e);
                await Task.Delay(Poll, cancellation).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw NotWritable(lockPath, url, e);
            }
        }
    }

    // Windows: ERROR_SHARING_VIOLATION (32) or ERROR_LOCK_VIOLATION (33). Unix: .NET reports a held flock with its errno,
    // EWOULDBLOCK (11 on Linux, 35 on macOS and the BSDs).
    private static bool IsHeldByAnother(IOException e) =>
        OperatingSystem.IsWindows() ? (e.HResult & 0xFFFF) is 32 or 33 : e.HResult == (OperatingSystem.IsLinux() ? 11 : 35);

    internal static WeightDownloadException NotWritable(string path, Uri url, Exception inner) =>
        new(WeightDownloadFailure.CacheNotWritable,
            $"Cannot write to the weights cache at {path} (for {url}): {inner.Message} Make the folder writable, or point CNN_HOME " +
            "(or TORCH_HOME / HF_HOME) at a writable folder.", url, path, inner);
}
