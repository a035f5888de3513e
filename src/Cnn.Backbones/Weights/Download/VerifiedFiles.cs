using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Cnn.Backbones.Weights.Download;

/// <summary>
/// Remembers which cached files were verified: one small note per file in <see cref="WeightStoreOptions.VerifiedMemoDirectory"/>
/// with the file's path, size, modification time and hashes. A file whose size and time still match its note is not hashed again;
/// any other file is hashed before use, so a truncated or replaced file is caught, and its note gives the hash it should have.
/// </summary>
internal sealed class VerifiedFiles(string memoDirectory)
{
    private const string Header = "cnn-verified-v1";

    /// <summary>The outcome of a check: whether the file meets the expectation, and the hashes it has.</summary>
    public readonly record struct Outcome(bool Ok, string Sha256, string? GitBlobSha1, string? Problem);

    /// <summary>
    /// Checks <paramref name="path"/> (a link is followed) against <paramref name="expected"/>; with no hash expected, against the
    /// hash its note recorded when it was verified (a file never verified and with nothing expected passes).
    /// </summary>
    public async Task<Outcome> CheckAsync(string path, ExpectedContent? expected, CancellationToken cancellation)
    {
        string target = ResolveTarget(path);
        var info = new FileInfo(target);
        long size = info.Length;
        long ticks = info.LastWriteTimeUtc.Ticks;
        var note = Read(target);
        bool needsGit = expected?.GitBlobSha1 is not null;

        if (note is { } n && n.Size == size && n.Ticks == ticks && (!needsGit || n.GitBlobSha1 is not null))
            return Judge(expected ?? new(n.Sha256, null, null), size, n.Sha256, n.GitBlobSha1);

        string sha256 = await ExpectedContent.Sha256Async(target, cancellation).ConfigureAwait(false);
        string? git = needsGit ? await ExpectedContent.GitBlobSha1Async(target, cancellation).ConfigureAwait(false) : null;
        var outcome = Judge(expected ?? (note is { } old ? new(old.Sha256, null, null) : new(null, null, null)), size, sha256, git);
        if (outcome.Ok) Remember(target, size, ticks, sha256, git);
        return outcome;
    }

    /// <summary>Records that <paramref name="path"/> (a link is followed) has these hashes now.</summary>
    public void Remember(string path, string sha256, string? gitBlobSha1)
    {
        string target = ResolveTarget(path);
        var info = new FileInfo(target);
        Remember(target, info.Length, info.LastWriteTimeUtc.Ticks, sha256, gitBlobSha1);
    }

    private static Outcome Judge(ExpectedContent expected, long size, string sha256, string? git)
    {
        if (expected.Size is { } want && want != size)
            return new(false, sha256, git, $"it has {size} bytes, not the {want} expected");
        if (!expected.IsMetBy(sha256, git))
            return new(false, sha256, git, $"it has {expected.DescribeActual(sha256, git)}, not the expected {expected.Describe()}");
        return new(true, sha256, git, null);
    }

    private static string ResolveTarget(string path)
    {
        var info = new FileInfo(path);
        return info.LinkTarget is null ? info.FullName : info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? info.FullName;
    }

    private string NotePath(string target) =>
        Path.Combine(memoDirectory, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(target)))[..32] + ".txt");

    private readonly record struct Note(long Size, long Ticks, string Sha256, string? GitBlobSha1);

    private Note? Read(string target)
    {
        try
        {
            string[] lines = File.ReadAllLines(NotePath(target));
            if (lines.Length < 6 || lines[0] != Header || lines[1] != target) return null;
            return new Note(long.Parse(lines[2], CultureInfo.InvariantCulture), long.Parse(lines[3], CultureInfo.InvariantCulture),
                            lines[4], lines[5].Length == 0 ? null : lines[5]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or OverflowException)
        {
            return null; // no note, or an unreadable one: the file is hashed.
        }
    }

    private void Remember(string target, long size, long ticks, string sha256, string? git)
    {
        try
        {
            Directory.CreateDirectory(memoDirectory);
            string note = NotePath(target);
            string temporary = note + "." + Guid.NewGuid().ToString("N") + ".tmp";
            File.WriteAllText(temporary, string.Join('\n', Header, target, size.ToString(CultureInfo.InvariantCulture),
                                                     ticks.ToString(CultureInfo.InvariantCulture), sha256, git ?? "") + "\n");
            File.Move(temporary, note, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A note that cannot be written costs a hash at the next use, nothing else.
        }
    }
}
