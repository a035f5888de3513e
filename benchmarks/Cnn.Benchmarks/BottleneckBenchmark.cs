using System.Diagnostics;
using Cnn.Backbones.Onnx;
using Cnn.MLNet;
using Cnn.MLNet.Data;
using Cnn.MLNet.Training;
using Microsoft.ML;

namespace Cnn.Benchmarks;

/// <summary>
/// Frozen-backbone fine-tuning with and without the bottleneck cache, side by side in one run: ML.NET's pretrained ResNet-18
/// (imported from the Microsoft.ML.DnnImageFeaturizer.ResNet18 package this project references), the backbone frozen, no
/// augmentation, on real Fashion-MNIST images; epoch throughput, wall time and test accuracy of both.
/// Usage: dotnet run -c Release --project benchmarks/Cnn.Benchmarks -- --bottleneck [--per-class N] [--epochs N] [--size PX]
/// </summary>
internal static class BottleneckBenchmark
{
    public static void Run(int perClass, int epochs, int size)
    {
        string weights = Path.Combine(Path.GetTempPath(), $"cnn-bench-resnet18-{Guid.NewGuid():N}.safetensors");
        var clock = Stopwatch.StartNew();
        MlNetResNet18.ImportTo(weights);
        Console.WriteLine($"ML.NET's ResNet-18 imported and verified in {clock.Elapsed.TotalSeconds:0.0} s");
        try
        {
            var train = new ImageDataset(FashionMnist.Load(FashionMnistSplit.Train).Samples, FashionMnist.ClassNames).TakePerClass(perClass);
            var test = new ImageDataset(FashionMnist.Load(FashionMnistSplit.Test).Samples, FashionMnist.ClassNames).TakePerClass(100);
            Console.WriteLine($"frozen resnet18 (ML.NET weights), {size} px, {train.Samples.Count} training / {test.Samples.Count} test Fashion-MNIST images, {epochs} epochs of batch 32, no augmentation");
            var direct = Fit(weights, train, test, epochs, size, cache: false);
            var cached = Fit(weights, train, test, epochs, size, cache: true);
            Console.WriteLine($"(1) backbone every epoch : epochs {direct.EpochRate,10:0.0} img/s, wall {direct.Seconds,6:0.0} s, test accuracy {direct.Accuracy:P2}");
            Console.WriteLine($"(2) bottleneck cache     : epochs {cached.EpochRate,10:0.0} img/s, wall {cached.Seconds,6:0.0} s (cache built once), test accuracy {cached.Accuracy:P2}");
            Console.WriteLine($"ratio (2)/(1): epochs {cached.EpochRate / direct.EpochRate:0.0}x, end to end {direct.Seconds / cached.Seconds:0.0}x (target >= 20x for the epochs); " +
                              $"accuracy difference {100 * (cached.Accuracy - direct.Accuracy):+0.00;-0.00;0.00} points");
        }
        finally
        {
            File.Delete(weights);
        }
    }

    private static (double EpochRate, double Seconds, double Accuracy) Fit(string weights, ImageDataset train, ImageDataset test, int epochs, int size, bool cache)
    {
        var ml = new MLContext(seed: 1);
        var rates = new List<double>();
        var options = new CnnTrainerOptions
        {
            Model = new() { WeightsPath = weights, InChannels = 1, ImageSize = size },
            CropPct = 1.0, Freeze = FreezeMode.Backbone, Augment = false, CacheBottlenecks = cache, Epochs = epochs, BatchSize = 32,
            LearningRate = 3e-3, Seed = 1, Device = CnnDevice.Cpu, EpochCompleted = m => rates.Add(m.ImagesPerSecond),
            Precision = CnnPrecision.Float32, MemoryFormat = CnnMemoryFormat.Contiguous,
        };
        var mapping = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ImageDataViews.ToDataView(ml, train));
        var clock = Stopwatch.StartNew();
        using var model = CnnTrainer.ResNet18(options, ml).Fit(mapping.Transform(ImageDataViews.ToDataView(ml, train)));
        double seconds = clock.Elapsed.TotalSeconds;
        var scored = model.Transform(mapping.Transform(ImageDataViews.ToDataView(ml, test)));
        double accuracy = ml.MulticlassClassification.Evaluate(scored).MicroAccuracy;
        return (rates.Average(), seconds, accuracy);
    }
}
