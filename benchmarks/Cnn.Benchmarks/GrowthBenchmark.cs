using System.Globalization;
using Cnn.MLNet;
using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using Microsoft.ML;

namespace Cnn.Benchmarks;

/// <summary>
/// How cost grows: epoch time against the number of images (1k, 4k, 16k by default), and peak resident memory against the batch
/// size, printed as two tables. Each measurement is a fresh child process (so its peak resident set, the kernel's
/// <c>VmHWM</c>, is its own) running <c>CnnTrainer.Fit</c> in float32 contiguous on a folder of PNG files written once:
/// resnet18 from scratch, random resized crop + flip, AdamW.
/// Usage: dotnet run -c Release --project benchmarks/Cnn.Benchmarks -- --growth [--counts 1000,4000,16000] [--batches 16,32,64,128,256]
/// </summary>
internal static class GrowthBenchmark
{
    private const int ImageSide = 80, Classes = 10;

    public static void Run(IReadOnlyList<int> counts, IReadOnlyList<int> batches)
    {
        string root = Path.Combine(Path.GetTempPath(), $"cnn-bench-growth-{Guid.NewGuid():N}");
        try
        {
            WritePngFolder(root, counts.Max());
            Console.WriteLine($"resnet18 from scratch, PNG folder of {ImageSide}x{ImageSide} images ({Classes} classes), float32 contiguous, one child process per row");

            Console.WriteLine("\nepoch time against images (32 px, batch 64, one epoch)");
            Console.WriteLine($"{"images",8} | {"epoch s",8} | {"s per 1k images",15} | {"img/s",7} | {"peak RSS MB",11}");
            foreach (int count in counts)
            {
                var r = Child(root, count, batch: 64, size: 32, epochs: 1);
                Console.WriteLine($"{count,8} | {r.EpochSeconds,8:0.0} | {1000 * r.EpochSeconds / count,15:0.00} | {count / r.EpochSeconds,7:0.0} | {r.PeakMegabytes,11:0}");
            }

            Console.WriteLine("\npeak resident memory against batch size (112 px, 1 epoch of 512 images)");
            Console.WriteLine($"{"batch",8} | {"peak RSS MB",11} | {"img/s",7}");
            foreach (int batch in batches)
            {
                var r = Child(root, 512, batch, size: 112, epochs: 1);
                Console.WriteLine($"{batch,8} | {r.PeakMegabytes,11:0} | {512 / r.EpochSeconds,7:0.0}");
            }
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>
    /// The child process's work (<c>--growth-child ROOT COUNT BATCH SIZE EPOCHS</c>): trains on the first COUNT images of the
    /// folder (class-balanced) and prints the last epoch's seconds and the process's peak resident set in bytes.
    /// </summary>
    public static void RunChild(string root, int count, int batch, int size, int epochs)
    {
        var ml = new MLContext(seed: 1);
        var dataset = ImageFolderDataset.Scan(root).TakePerClass(count / Classes);
        var data = ImageDataViews.MapLabelsToKeys(ml, dataset.ClassNames).Fit(ImageDataViews.ToDataView(ml, dataset))
            .Transform(ImageDataViews.ToDataView(ml, dataset));
        var seconds = new List<double>();
        var options = new CnnTrainerOptions
        {
            Model = new() { ImageSize = size }, Epochs = epochs, BatchSize = batch, Augment = true, Seed = 1, Device = CnnDevice.Cpu,
            Precision = CnnPrecision.Float32, MemoryFormat = CnnMemoryFormat.Contiguous,
            EpochCompleted = m => seconds.Add(m.Elapsed.TotalSeconds),
        };
        using (CnnTrainer.ResNet18(options, ml).Fit(data)) { }
        Console.WriteLine(FormattableString.Invariant($"{seconds[^1]:0.000} {ProcessMemory.PeakResidentBytes()}"));
    }

    private static (double EpochSeconds, double PeakMegabytes) Child(string root, int count, int batch, int size, int epochs)
    {
        var values = ChildProcess.Run("--growth-child", root, count, batch, size, epochs).Split(' ');
        return (double.Parse(values[0], CultureInfo.InvariantCulture), long.Parse(values[1], CultureInfo.InvariantCulture) / 1e6);
    }

    // count PNG files in Classes folders: a per-class pattern plus noise, so the classes are learnable and the files differ.
    private static void WritePngFolder(string root, int count)
    {
        for (int c = 0; c < Classes; c++) Directory.CreateDirectory(Path.Combine(root, $"class{c:02d}"));
        Parallel.For(0, count, i =>
        {
            int c = i % Classes;
            var random = new Random(i);
            var pixels = new byte[ImageSide * ImageSide * 3];
            for (int p = 0; p < pixels.Length; p++)
            {
                int x = p / 3 % ImageSide, y = p / 3 / ImageSide;
                pixels[p] = (byte)(((x * (c + 1) + y * (Classes - c)) & 0xFF) / 2 + random.Next(128));
            }
            File.WriteAllBytes(Path.Combine(root, $"class{c:02d}", $"{i:05d}.png"), ImageEncoder.EncodePng(pixels, ImageSide, ImageSide, 3));
        });
    }
}
