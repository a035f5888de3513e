using System.IO.Compression;
using Cnn.Backbones.Optimizers;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// Fashion-MNIST images for the learning tests: Debian's <c>dataset-fashion-mnist</c> when installed, else the seeded subset
/// that the cnn tool embeds (the same idx files, in the repository); and a small training run on them.
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

    /// <summary>
    /// Trains <paramref name="model"/> with Adam for <paramref name="steps"/> steps of <paramref name="batch"/> images drawn (seeded)
    /// from the first <paramref name="trainCount"/> training images, then returns its eval-mode accuracy on the first
    /// <paramref name="testCount"/> test images. <paramref name="afterFirstBackward"/> may inspect the gradients of step 0.
    /// </summary>
    public static double TrainAndTest(nn.Module<Tensor, Tensor> model, int trainCount, int testCount, int steps, int batch, double learningRate,
        Action? afterFirstBackward = null)
    {
        var (trainX, trainY) = Read("train", trainCount);
        var (testX, testY) = Read("t10k", testCount);
        try
        {
            using var optimizer = new HeldScalarAdamW(model.parameters(), lr: learningRate); // Adam: no weight decay
            model.train();
            var generator = new Random(5);
            for (int step = 0; step < steps; step++)
            {
                using var scope = NewDisposeScope();
                var index = tensor(Enumerable.Range(0, batch).Select(_ => (long)generator.Next(trainCount)).ToArray());
                optimizer.zero_grad();
                var loss = nn.functional.cross_entropy(model.call(trainX.index_select(0, index)), trainY.index_select(0, index));
                loss.backward();
                if (step == 0) afterFirstBackward?.Invoke();
                optimizer.step();
            }
            model.eval();
            using var evalScope = NewDisposeScope();
            using var noGrad = no_grad();
            return model.call(testX).argmax(1).eq(testY).to_type(ScalarType.Float32).mean().item<float>();
        }
        finally
        {
            trainX.Dispose(); trainY.Dispose(); testX.Dispose(); testY.Dispose();
        }
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
            string candidate = Path.Combine(directory.FullName, "src", "Cnn.Cli", "Data", "Resources", "FashionMnist");
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException($"Neither {DebianFolder} nor the repository's embedded Fashion-MNIST subset was found.");
    }
}
