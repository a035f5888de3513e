// A real pretrained network from ONNX: ML.NET's ResNet-18 featurizer (NuGet Microsoft.ML.DnnImageFeaturizer.ResNet18, read from
// the NuGet cache) imported onto resnet18 with three blocks in layer4, its preprocessing as mean/std, then its features feeding
// LightGBM on Fashion-MNIST, against the same architecture randomly initialised.
// Usage: dotnet run -c Release --project examples/MlNetResNet18 -- [--train-per-class 100]
using System.Diagnostics;
using System.Reflection;
using Cnn.Backbones.Models;
using Cnn.Backbones.Onnx;
using Cnn.Backbones.Weights;
using Cnn.MLNet;
using Cnn.MLNet.Data;
using Cnn.MLNet.Features;
using Microsoft.ML;

int perClass = int.Parse(Option("--train-per-class") ?? "100");
string package = typeof(Program).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
    .First(a => a.Key == "DnnImageFeaturizerResNet18").Value!;
string models = Path.Combine(package, "tools", "DnnImageModels");

var clock = Stopwatch.StartNew();
using var imported = OnnxImporter.ImportWithPreprocessing(
    Path.Combine(models, "ResNetPrepOnnx", "ResNetPreprocess.onnx"), Path.Combine(models, "ResNet18Onnx", "ResNet18.onnx"), "resnet18");
var config = imported.PretrainedConfig!;
string weights = Path.Combine(Path.GetTempPath(), "mlnet-resnet18.safetensors");
SafeTensors.Write(weights, imported.Weights);
Console.WriteLine($"imported {imported.Weights.Count} tensors onto resnet18 with blocks [{string.Join(", ", imported.Options.BlockCounts!)}], " +
                  $"verified against ONNX Runtime (relative difference {imported.Report.RelativeDifference:G2}) in {clock.Elapsed.TotalSeconds:0.0} s; " +
                  $"mean [{string.Join(", ", config.Mean.Select(m => m.ToString("0.000")))}], std 1/255");

var ml = new MLContext(seed: 1);
var trainSet = FashionMnist.Load(FashionMnistSplit.Train);
var testSet = FashionMnist.Load(FashionMnistSplit.Test);
IDataView Take(ImageDataset set, int count) => ImageDataViews.ToDataView(ml, set.TakePerClass(count));
var train = Take(trainSet, perClass);
var test = Take(testSet, Math.Max(perClass / 3, 30));

foreach (var (name, path) in new[] { ("ML.NET pretrained", weights), ("random init", (string?)null) })
{
    clock.Restart();
    var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
        .Append(ml.Transforms.ExtractCnnFeatures(new CnnFeatureOptions
        {
            Architecture = "resnet18",
            Model = imported.Options with { WeightsPath = path, ImageSize = 224 },
            Mean = config.Mean.Select(m => (float)m).ToArray(),
            Std = config.Std.Select(s => (float)s).ToArray(),
            CropPct = 1.0,
            BatchSize = 32,
        }))
        .AppendCacheCheckpoint(ml)
        .Append(ml.MulticlassClassification.Trainers.LightGbm("Label", "Features"));
    var model = pipeline.Fit(train);
    var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
    Console.WriteLine($"{name}: Fashion-MNIST test accuracy {metrics.MicroAccuracy:P2} with {perClass} training images per class ({clock.Elapsed.TotalSeconds:0} s)");
}

string? Option(string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}
