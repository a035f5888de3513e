using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;

namespace Cnn.Cli.Inference;

/// <summary>The image files named on a command line: checked to exist and decode before any model work starts.</summary>
internal static class ImageFiles
{
    /// <summary>
    /// The positional arguments as image paths, a folder standing for every image below it (by the image extensions of a folder
    /// per class, in ordinal path order); a usage error when there are none.
    /// </summary>
    public static IReadOnlyList<string> FromPositionals(CliArguments arguments)
    {
        if (arguments.Positionals.Count == 0)
            throw new CliUsageException("give at least one image file or folder");
        var extensions = Cnn.MLNet.Data.ImageFolderDataset.DefaultExtensions.ToHashSet(StringComparer.OrdinalIgnoreCase);
        var paths = new List<string>();
        foreach (string argument in arguments.Positionals)
        {
            if (!Directory.Exists(argument))
            {
                paths.Add(argument);
                continue;
            }
            var found = Directory.EnumerateFiles(argument, "*", SearchOption.AllDirectories)
                .Where(f => extensions.Contains(Path.GetExtension(f))).Order(StringComparer.Ordinal).ToList();
            if (found.Count == 0)
                throw new CliUsageException($"folder '{argument}' holds no image ({string.Join(" ", Cnn.MLNet.Data.ImageFolderDataset.DefaultExtensions)})");
            paths.AddRange(found);
        }
        return paths;
    }

    /// <summary>
    /// Reads and test-decodes every file (in parallel), so that a missing, unreadable or non-image file fails with one line
    /// naming it (<see cref="ImageDecodeException"/>; the first such file in path order) before a model is built; returns the
    /// encoded bytes.
    /// </summary>
    public static IReadOnlyList<byte[]> ReadAll(IReadOnlyList<string> paths)
    {
        var result = new byte[paths.Count][];
        var failures = new ImageDecodeException?[paths.Count];
        try
        {
            Parallel.For(0, paths.Count, () => new DecodedImage(), (i, _, scratch) =>
            {
                try { result[i] = Read(paths[i], scratch); }
                catch (ImageDecodeException ex) { failures[i] = ex; }
                return scratch;
            }, _ => { });
        }
        catch (AggregateException ex)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ex.Flatten().InnerExceptions[0]).Throw();
        }
        if (Array.Find(failures, f => f is not null) is { } first) throw first;
        return result;
    }

    private static byte[] Read(string path, DecodedImage scratch)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (FileNotFoundException ex) { throw new ImageDecodeException(path, "the file does not exist.", ex); }
        catch (DirectoryNotFoundException ex) { throw new ImageDecodeException(path, "the folder does not exist.", ex); }
        catch (UnauthorizedAccessException ex) { throw new ImageDecodeException(path, "access denied: " + ex.Message, ex); }
        catch (IOException ex) { throw new ImageDecodeException(path, "the file cannot be read: " + ex.Message, ex); }
        ImageDecoder.Decode(bytes, 3, path, into: scratch);
        return bytes;
    }

    /// <summary>Samples for the batcher (label 0, named by their path) after <see cref="ReadAll"/> has checked them.</summary>
    public static IReadOnlyList<ImageSample> ToSamples(IReadOnlyList<string> paths, IReadOnlyList<byte[]> encoded) =>
        paths.Select((path, i) => ImageSample.FromEncoded(encoded[i], 0, path)).ToArray();
}
