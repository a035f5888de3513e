// Transfer learning on real pretrained weights, side by side in one run: ML.NET's pretrained ResNet-18
// (Microsoft.ML.DnnImageFeaturizer.ResNet18) on Fashion-MNIST with N labelled images per class, accuracy on the test split.
//   (1) ML.NET's own recipe: DnnFeaturizeImage (ResNet-18, 224 px) + SdcaMaximumEntropy — the anchor.
//   (2) ExtractCnnFeatures with the same weights imported from ONNX + the same SDCA trainer.
//   (3) CnnTrainer with the backbone frozen: the bottleneck cache trains the head on cached features.
//   (4) Staged fine-tuning of the whole network (fastai's fine_tune: head-only epoch, then all with discriminative rates).
//   (5) The same network from scratch with the same epochs.
//   (2o), (3o): rows (2) and (3) with the ONNX Runtime inference engine (the imported network's own ONNX export runs the
//   feature pass, the bottleneck cache and the predictions; training stays in TorchSharp).
//   (3s): row (3o) at --frozen-size (default 112 px): the same frozen pretrained backbone on smaller inputs.
// Images are written once as 224x224 PNGs (each Fashion-MNIST pixel an 8x8 block), so every recipe reads the same files and no
// resizing differs between ML.NET's and ours. Rows (4) and (5) train at --tune-size (default 64 px) to fit 2 cores.
// Usage: dotnet run -c Release --project examples/TransferLearning -- [--per-class 100,1000] [--test 10000] [--tune-size 64] [--epochs 4]
//        [--frozen-size 112] [--rows 1,2,2o,3,3o,3s,4,5]
using System.Diagnostics;
using Cnn.Backbones.Onnx;
using Cnn.MLNet;
using Cnn.MLNet.Data;
using Cnn.MLNet.Features;
using Cnn.MLNet.Imaging;
using Microsoft.ML;
using Microsoft.ML.Data;

int[] perClassSizes = (Option("--per-class") ?? "100,1000").Split(',').Select(int.Parse).ToArray();
int testCount = int.Parse(Option("--test") ?? "10000");
int tuneSize = int.Parse(Option("--tune-size") ?? "64");
int frozenSize = int.Parse(Option("--frozen-size") ?? "112");
int epochs = int.Parse(Option("--epochs") ?? "4");
var rows = (Option("--rows") ?? "1,2,2o,3,3o,3s,4,5").Split(',').ToHashSet();
string work = Option("--work") ?? Path.Combine(Path.GetTempPath(), "cnn-transfer-learning");

var clock = Stopwatch.StartNew();
string weights = Path.Combine(work, "mlnet-resnet18.safetensors");
Directory.CreateDirectory(work);
var report = MlNetResNet18.ImportTo(weights);
Console.WriteLine($"ML.NET's ResNet-18 imported onto resnet18 and verified against ONNX Runtime (relative difference {report.RelativeDifference:G2}) in {clock.Elapsed.TotalSeconds:0} s");

var trainSet = FashionMnist.Load(FashionMnistSplit.Train);
var testSet = FashionMnist.Load(FashionMnistSplit.Test);
var test = WriteImages(Path.Combine(work, "test"), testSet.Samples.Take(testCount).ToList());
Console.WriteLine($"{test.Count} test images (Fashion-MNIST test split{(testCount < 10000 ? ", first " + testCount : "")}); {Environment.ProcessorCount} cores");
Console.WriteLine($"{"recipe",-58} {"per class",9} {"accuracy",9} {"wall",8}");

foreach (int perClass in perClassSizes)
{
    var picked = new ImageDataset(trainSet.Samples, FashionMnist.ClassNames).TakePerClass(perClass).Samples;
    var train = WriteImages(Path.Combine(work, $"train-{perClass}"), picked);
    if (rows.Contains("1")) Row("(1) ML.NET DnnFeaturizeImage(ResNet-18, 224) + SDCA", perClass, () => MlNetRecipe(train, test));
    if (rows.Contains("2")) Row("(2) ExtractCnnFeatures(imported ResNet-18, 224) + SDCA", perClass, () => FeaturesRecipe(train, test, CnnInferenceEngine.TorchSharp));
    if (rows.Contains("2o")) Row("(2o) the same, ONNX Runtime engine", perClass, () => FeaturesRecipe(train, test, CnnInferenceEngine.OnnxRuntime));
    if (rows.Contains("3")) Row("(3) CnnTrainer, backbone frozen, bottleneck cache, 224", perClass, () => Fit(train, test, 224, frozen: true, pretrained: true, epochs: 10));
    if (rows.Contains("3o")) Row("(3o) the same, ONNX Runtime engine", perClass, () => Fit(train, test, 224, frozen: true, pretrained: true, epochs: 10, CnnInferenceEngine.OnnxRuntime));
    if (rows.Contains("3s")) Row($"(3s) (3o) at {frozenSize} px", perClass, () => Fit(train, test, frozenSize, frozen: true, pretrained: true, epochs: 10, CnnInferenceEngine.OnnxRuntime));
    if (rows.Contains("4")) Row($"(4) CnnTrainer, staged fine-tuning (1 + {epochs - 1} epochs), {tuneSize}", perClass, () => Fit(train, test, tuneSize, frozen: false, pretrained: true, epochs: epochs));
    if (rows.Contains("5")) Row($"(5) CnnTrainer, from scratch ({epochs} epochs), {tuneSize}", perClass, () => Fit(train, test, tuneSize, frozen: false, pretrained: false, epochs: epochs));
}

void Row(string name, int perClass, Func<double> run)
{
    var watch = Stopwatch.StartNew();
    double accuracy = run();
    Console.WriteLine($"{name,-58} {perClass,9} {accuracy,9:P2} {watch.Elapsed.TotalSeconds,7:0}s");
}

double MlNetRecipe(IReadOnlyList<ImageFile> train, IReadOnlyList<ImageFile> test)
{
    var ml = new MLContext(seed: 1);
    var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
        .Append(ml.Transforms.LoadImages("ImageObject", imageFolder: null, inputColumnName: nameof(ImageFile.Path)))
        .Append(ml.Transforms.ResizeImages("ImageObject", 224, 224, "ImageObject"))
        .Append(ml.Transforms.ExtractPixels("Pixels", "ImageObject"))
        .Append(ml.Transforms.DnnFeaturizeImage("Features", m => m.ModelSelector.ResNet18(ml, m.OutputColumn, m.InputColumn), "Pixels"))
        .AppendCacheCheckpoint(ml)
        .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy("Label", "Features"));
    var model = pipeline.Fit(ml.Data.LoadFromEnumerable(train));
    return ml.MulticlassClassification.Evaluate(model.Transform(ml.Data.LoadFromEnumerable(test))).MicroAccuracy;
}

double FeaturesRecipe(IReadOnlyList<ImageFile> train, IReadOnlyList<ImageFile> test, CnnInferenceEngine engine)
{
    var ml = new MLContext(seed: 1);
    var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
        .Append(ml.Transforms.ExtractCnnFeatures(new CnnFeatureOptions
        {
            Architecture = "resnet18", Model = new() { WeightsPath = weights, ImageSize = 224 }, CropPct = 1.0, ImageColumnName = nameof(ImageFile.Path),
            Engine = engine,
        }))
        .AppendCacheCheckpoint(ml)
        .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy("Label", "Features"));
    var model = pipeline.Fit(ml.Data.LoadFromEnumerable(train));
    return ml.MulticlassClassification.Evaluate(model.Transform(ml.Data.LoadFromEnumerable(test))).MicroAccuracy;
}

double Fit(IReadOnlyList<ImageFile> train, IReadOnlyList<ImageFile> test, int size, bool frozen, bool pretrained, int epochs,
    CnnInferenceEngine engine = CnnInferenceEngine.TorchSharp)
{
    var ml = new MLContext(seed: 1);
    var options = new CnnTrainerOptions
    {
        ImageColumnName = nameof(ImageFile.Path), Model = new() { WeightsPath = pretrained ? weights : null, ImageSize = size }, CropPct = 1.0,
        Epochs = frozen ? epochs : pretrained ? epochs - 1 : epochs, FreezeEpochs = !frozen && pretrained ? 1 : 0,
        Freeze = frozen ? FreezeMode.Backbone : FreezeMode.None, Augment = !frozen, AugmentMinScale = 1.0,
        LearningRate = frozen ? 3e-3 : 1e-3, BatchSize = 32, Seed = 1, InferenceEngine = engine,
        // The README's figures were measured in float32 contiguous; without these the trainer computes as its defaults, Auto,
        // pick (channels-last for this network at 64 px and more on the CPU, and bfloat16 where the CPU has it natively).
        Precision = CnnPrecision.Float32, MemoryFormat = CnnMemoryFormat.Contiguous,
    };
    var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(train));
    using var model = CnnTrainer.ResNet18(options, ml).Fit(keys.Transform(ml.Data.LoadFromEnumerable(train)));
    return ml.MulticlassClassification.Evaluate(model.Transform(keys.Transform(ml.Data.LoadFromEnumerable(test)))).MicroAccuracy;
}

static List<ImageFile> WriteImages(string folder, IReadOnlyList<ImageSample> samples)
{
    Directory.CreateDirectory(folder);
    var files = new ImageFile[samples.Count];
    Parallel.For(0, samples.Count, i =>
    {
        var sample = samples[i];
        string path = Path.Combine(folder, $"{i:D5}.png");
        if (!File.Exists(path))
        {
            var small = sample.Decode(1).Pixels.ToArray();
            var large = new byte[224 * 224];
            for (int y = 0; y < 224; y++)
                for (int x = 0; x < 224; x++)
                    large[y * 224 + x] = small[y / 8 * 28 + x / 8];
            File.WriteAllBytes(path, ImageEncoder.EncodePng(large, 224, 224, 1));
        }
        files[i] = new ImageFile { Path = path, Label = FashionMnist.ClassNames[sample.Label] };
    });
    return files.ToList();
}

string? Option(string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

/// <summary>One image file and its class name.</summary>
internal sealed class ImageFile
{
    /// <summary>Path of the PNG.</summary>
    public string Path { get; set; } = "";

    /// <summary>Class name.</summary>
    public string Label { get; set; } = "";
}
