using System.Globalization;

namespace Cnn.Cli;

/// <summary>Checks of where a verb will write, made before any long work starts; and durations as people read them.</summary>
internal static class OutputPath
{
    /// <summary>
    /// Returns <paramref name="path"/> when a file can be written there: it is not empty, not an existing folder, and no part of
    /// its folder is an existing file.
    /// </summary>
    /// <exception cref="CliUsageException">The path cannot be a file; the message says why.</exception>
    public static string Check(string path, string option)
    {
        if (string.IsNullOrWhiteSpace(path))
            throw new CliUsageException($"option {option} needs a file name, got an empty one");
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full))
            throw new CliUsageException($"option {option} '{path}' is a folder; give a file name, e.g. {Path.Combine(path, "model.zip")}");
        for (string? parent = Path.GetDirectoryName(full); !string.IsNullOrEmpty(parent); parent = Path.GetDirectoryName(parent))
        {
            if (File.Exists(parent))
                throw new CliUsageException($"option {option} '{path}' lies under '{parent}', which is a file, not a folder");
            if (Directory.Exists(parent)) break;
        }
        return path;
    }

    /// <summary>A duration as a line of output shows it: seconds under a minute, minutes under an hour, else hours.</summary>
    public static string Duration(TimeSpan elapsed) =>
        elapsed.TotalSeconds < 60 ? elapsed.TotalSeconds.ToString("0.0 's'", CultureInfo.InvariantCulture)
        : elapsed.TotalMinutes < 60 ? elapsed.TotalMinutes.ToString("0.0 'min'", CultureInfo.InvariantCulture)
        : elapsed.TotalHours.ToString("0.00 'h'", CultureInfo.InvariantCulture);
}
