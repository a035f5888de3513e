using System.Text.RegularExpressions;

namespace Cnn.Backbones.Weights.Download;

/// <summary>
/// One repository's folder in the Hugging Face hub cache, laid out as huggingface_hub writes it so either can read what the other
/// cached: <c>blobs/&lt;etag&gt;</c> holds the bytes, <c>snapshots/&lt;commit&gt;/&lt;file&gt;</c> links to them, <c>refs/&lt;branch&gt;</c>
/// holds the commit a branch pointed at, <c>.no_exist/&lt;commit&gt;/&lt;file&gt;</c> marks files the repository lacks, and the hub
/// cache's <c>.locks/models--org--name/&lt;etag&gt;.lock</c> serializes downloads of one blob.
/// </summary>
internal sealed partial class HubCacheLayout(string hubCacheDirectory, HubModelId id)
{
    public string RepositoryDirectory { get; } = Path.Combine(hubCacheDirectory, id.CacheFolderName);

    public string SnapshotDirectory(string commit) => Path.Combine(RepositoryDirectory, "snapshots", commit);

    public string SnapshotFile(string commit, string fileName) => Path.Combine(SnapshotDirectory(commit), fileName);

    public string RefFile(string revision) => Path.Combine(RepositoryDirectory, "refs", revision);

    public string NoExistMarker(string commit, string fileName) => Path.Combine(RepositoryDirectory, ".no_exist", commit, fileName);

    public string Blob(string etag) => Path.Combine(RepositoryDirectory, "blobs", SafeName(etag));

    // huggingface_hub's partial blob name: the same .incomplete file it resumes, so either can finish what the other began.
    public string PartialBlob(string etag) => Blob(etag) + ".incomplete";

    public string BlobLock(string etag) => Path.Combine(hubCacheDirectory, ".locks", id.CacheFolderName, SafeName(etag) + ".lock");

    /// <summary>True when <paramref name="revision"/> is a full commit hash (a snapshot folder's name).</summary>
    public static bool IsCommitHash(string revision) => CommitHash().IsMatch(revision);

    /// <summary>The commit a revision names locally: itself if a commit hash, else what <c>refs/&lt;revision&gt;</c> recorded.</summary>
    public string? ResolveLocally(string revision)
    {
        if (IsCommitHash(revision)) return revision;
        try
        {
            string commit = File.ReadAllText(RefFile(revision)).Trim();
            return IsCommitHash(commit) || Directory.Exists(SnapshotDirectory(commit)) ? commit : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Records the commit a branch or tag points at (not for a revision that is a commit itself).</summary>
    public void WriteRef(string revision, string commit)
    {
        if (revision == commit) return;
        string path = RefFile(revision);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (File.Exists(path) && File.ReadAllText(path).Trim() == commit) return;
        string temporary = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        File.WriteAllText(temporary, commit);
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Marks a file the repository does not have at a commit (huggingface_hub's <c>.no_exist</c>), for offline use.</summary>
    public void MarkMissing(string commit, string fileName)
    {
        string path = NoExistMarker(commit, fileName);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using (File.Create(path)) { }
    }

    /// <summary>
    /// Points <c>snapshots/&lt;commit&gt;/&lt;file&gt;</c> at a blob: a relative symbolic link, as huggingface_hub makes, or a copy
    /// where the file system has no links (Windows without developer mode).
    /// </summary>
    public void LinkSnapshot(string commit, string fileName, string etag)
    {
        string pointer = SnapshotFile(commit, fileName);
        Directory.CreateDirectory(Path.GetDirectoryName(pointer)!);
        string blob = Blob(etag);
        string temporary = Path.Combine(Path.GetDirectoryName(pointer)!, "." + fileName + "." + Guid.NewGuid().ToString("N") + ".tmp");
        try
        {
            File.CreateSymbolicLink(temporary, Path.GetRelativePath(Path.GetDirectoryName(pointer)!, blob));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            File.Copy(blob, temporary, overwrite: true);
        }
        File.Move(temporary, pointer, overwrite: true); // replaces a stale or damaged pointer atomically
    }

    /// <summary>The blob a snapshot file links to, as an ETag (its file name), or null for a plain file.</summary>
    public static string? LinkedEtag(string snapshotFile)
    {
        var info = new FileInfo(snapshotFile);
        return info.LinkTarget is null ? null : Path.GetFileName(info.ResolveLinkTarget(returnFinalTarget: true)?.FullName);
    }

    // An ETag is a hex hash in practice; anything else is kept to file-name-safe characters.
    private static string SafeName(string etag) => SafeEtag().IsMatch(etag) ? etag : Convert.ToHexStringLower(
        System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(etag)));

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitHash();

    [GeneratedRegex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    private static partial Regex SafeEtag();
}
