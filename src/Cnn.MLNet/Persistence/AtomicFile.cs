using System.Diagnostics;

namespace Cnn.MLNet.Persistence;

/// <summary>
/// Writes a file so that a crash or a kill at any moment leaves either the old file or the new one, never a half-written one:
/// the content goes to a temporary file beside it (named after the writing process), is flushed to the disk, then renamed over
/// the target. Temporary files of writers that no longer run (a killed save) are removed by the next write to the same path.
/// </summary>
internal static partial class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> with <paramref name="write"/>, which fills the temporary file it is given.</summary>
    /// <param name="path">The target file.</param>
    /// <param name="overwriteReadOnly">Replace a read-only target (off: a read-only target is refused).</param>
    /// <param name="write">Writes the whole content to the temporary path.</param>
    /// <exception cref="IOException">The target is read-only and <paramref name="overwriteReadOnly"/> is off.</exception>
    public static void Write(string path, bool overwriteReadOnly, Action<string> write)
    {
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(folder);
        if (IsReadOnly(full))
        {
            if (!overwriteReadOnly)
                throw new IOException($"'{full}' is read-only, so it was not replaced. Save elsewhere, make it writable, or ask to overwrite it (cnn: --force).");
            File.SetAttributes(full, File.GetAttributes(full) & ~FileAttributes.ReadOnly);
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(full, File.GetUnixFileMode(full) | UnixFileMode.UserWrite);
        }
        RemoveLeftovers(full);
        string temporary = $"{full}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            write(temporary);
            using (var stream = new FileStream(temporary, FileMode.Open, FileAccess.ReadWrite))
                stream.Flush(flushToDisk: true);
            File.Move(temporary, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
    }

    /// <summary>Temporary files of earlier writes to <paramref name="full"/> whose process is gone (killed mid-save).</summary>
    internal static IReadOnlyList<string> Leftovers(string full)
    {
        string folder = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(folder)) return Array.Empty<string>();
        string prefix = Path.GetFileName(full) + ".";
        return Directory.EnumerateFiles(folder, prefix + "*.tmp")
            .Where(f => Path.GetFileName(f)[prefix.Length..].Split('.') is [var pid, var guid, "tmp"]
                        && int.TryParse(pid, out int id) && guid.Length == 32 && !IsRunning(id))
            .ToList();
    }

    /// <summary>
    /// Removes the temporary files that killed saves of any file named <paramref name="namePrefix"/>… left in <paramref name="folder"/>
    /// (for folders whose saves go to new names each time, such as checkpoints).
    /// </summary>
    public static void RemoveLeftoversIn(string folder, string namePrefix)
    {
        if (!Directory.Exists(folder)) return;
        foreach (string file in Directory.EnumerateFiles(folder, namePrefix + "*.tmp*"))
        {
            var match = TemporaryName().Match(Path.GetFileName(file));
            if (!match.Success || IsRunning(int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture))) continue;
            try { File.Delete(file); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }

    // <target>.<pid>.<32 hex>.tmp, and what a writer of that temporary file may itself have left beside it (<…>.tmp.tmp-<id>).
    [System.Text.RegularExpressions.GeneratedRegex(@"^.+\.(\d+)\.[0-9a-f]{32}\.tmp(\.tmp-\w+)?$")]
    private static partial System.Text.RegularExpressions.Regex TemporaryName();

    private static void RemoveLeftovers(string full)
    {
        foreach (string leftover in Leftovers(full))
        {
            try { File.Delete(leftover); }
            catch (IOException) { } // another process removed or holds it: not ours to fight over
            catch (UnauthorizedAccessException) { }
        }
    }

    private static bool IsRunning(int processId)
    {
        if (processId == Environment.ProcessId) return true;
        try
        {
            using var process = Process.GetProcessById(processId);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>
    /// Whether <paramref name="path"/> is an existing file marked read-only (the read-only attribute, or no owner write permission),
    /// which a save does not replace unless asked, even where the user could (root).
    /// </summary>
    public static bool IsReadOnly(string path) =>
        File.Exists(path) && (File.GetAttributes(path).HasFlag(FileAttributes.ReadOnly)
                              || !OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & UnixFileMode.UserWrite) == 0);
}
