using System.IO.Compression;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// Fashion-MNIST images for the learning tests: Debian's <c>dataset-fashion-mnist</c> when installed, else the seeded subset
/// that Cnn.MLNet embeds (the same idx files, in the repository).
/// </summary>
internal static class FashionMnistSample
{
    private const string DebianFolder = "/usr/share/datasets/fashion-mnist";

    /// <summary>The first <paramref name="count"/> images (scaled to [-1, 1], 1×28×28) and labels of a split ("train" or "t10k").</summary>
    public static (Tensor Images, Tensor Labels) Read(string split, int count)
    {
        string folder = File.Exists(Path.Combine(DebianFolder, "train-images-idx3-ubyte.gz")) ? DebianFolder : EmbeddedFolder();
        var pixels = ReadIdx(Path.Combine(folder, $"{split}-images-idx3-ubyte.gz"), 16, count * 28 * 28);
        var labels = ReadIdx(Path.Combine(folder, $"{split}-labels-idx1-ubyte.gz"), 8, count);
        var images = tensor(pixels.Select(p => p / 127.5f - 1f).ToArray()).reshape(count, 1, 28, 28);
        return (images.DetachFromDisposeScope(), tensor(labels.Select(l => (long)l).ToArray()).DetachFromDisposeScope());
    }

    private static byte[] ReadIdx(string path, int header, int bytes)
    {
        using var stream = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        var buffer = new byte[header + bytes];
        stream.ReadExactly(buffer);
        return buffer[header..];
    }

    private static string EmbeddedFolder()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            string candidate = Path.Combine(directory.FullName, "src", "Cnn.MLNet", "Data", "Resources", "FashionMnist");
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException($"Neither {DebianFolder} nor the repository's embedded Fashion-MNIST subset was found.");
    }
}
