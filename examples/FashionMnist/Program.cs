// Fashion-MNIST with ML.NET pipelines: LeNet-5 from scratch and ResNet-18 (one input channel), trained on the 60,000
// training images and evaluated on the 10,000 test images (the Debian package dataset-fashion-mnist, or the embedded
// subset when it is missing). Prints per-epoch progress, test accuracy and wall time.
// Usage: dotnet run -c Release --project examples/FashionMnist -- [lenet5|resnet18|both] [--epochs N] [--save folder]
//        --save writes each fitted pipeline to folder/<architecture>.zip (CnnPipelineFile), e.g. as a distillation teacher.
using System.Diagnostics;
using System.Globalization;
using Cnn.MLNet;
using Cnn.MLNet.Data;
using Cnn.MLNet.Persistence;
using Cnn.MLNet.Training;
using Microsoft.ML;

string? which = args.Where((a, i) => !a.StartsWith("--", StringComparison.Ordinal) && (i == 0 || !args[i - 1].StartsWith("--", StringComparison.Ordinal))).FirstOrDefault();
int? epochsOverride = Option("--epochs") is { } epochsText ? int.Parse(epochsText, CultureInfo.InvariantCulture) : null;
string? saveFolder = Option("--save");

var trainSet = FashionMnist.Load(FashionMnistSplit.Train);
var testSet = FashionMnist.Load(FashionMnistSplit.Test);
Console.WriteLine($"Fashion-MNIST from {(trainSet.Source == FashionMnistSource.Folder ? trainSet.Folder : "the embedded subset")}: " +
                  $"{trainSet.Count} training, {testSet.Count} test images; {Environment.ProcessorCount} cores");

// Fashion-MNIST's own pixel statistics.
float[] mean = [0.2860f], std = [0.3530f];
which ??= "both";
if (which is "lenet5" or "both")
    Run("lenet5", new CnnTrainerOptions
    {
        Model = new() { InChannels = 1, ImageSize = 28 }, CropPct = 1.0, Mean = mean, Std = std, Augment = false,
        Epochs = epochsOverride ?? 15, BatchSize = 64, LearningRate = 2e-3, WeightDecay = 1e-4, DecayNormAndBias = true, Seed = 1,
    });
if (which is "resnet18" or "both")
    Run("resnet18", new CnnTrainerOptions
    {
        // Horizontal flips only (AugmentMinScale 1: no cropping).
        Model = new() { InChannels = 1, ImageSize = 28 }, CropPct = 1.0, Mean = mean, Std = std, Augment = true, AugmentMinScale = 1.0,
        Epochs = epochsOverride ?? 10, BatchSize = 128, LearningRate = 2e-3, WeightDecay = 1e-4, DecayNormAndBias = true, WarmupEpochs = 0.2, Seed = 1,
    });

void Run(string architecture, CnnTrainerOptions options)
{
    var ml = new MLContext(seed: 1);
    options.ImageColumnName = "Image";
    options.EpochCompleted = m => Console.WriteLine($"  {architecture} {m}");
    var train = ImageDataViews.ToDataView(ml, trainSet);
    var test = ImageDataViews.ToDataView(ml, testSet);
    var clock = Stopwatch.StartNew();
    var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(CnnTrainer.Create(architecture, options, ml));
    var model = pipeline.Fit(train);
    double trainSeconds = clock.Elapsed.TotalSeconds;
    var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
    if (saveFolder is not null)
    {
        Directory.CreateDirectory(saveFolder);
        CnnPipelineFile.Save(ml, model, train.Schema, Path.Combine(saveFolder, architecture + ".zip"));
    }
    Console.WriteLine($"{architecture}: test accuracy {metrics.MicroAccuracy:P2} after {options.Epochs} epochs; " +
                      $"training {trainSeconds / 60:0.0} min, total {clock.Elapsed.TotalMinutes:0.0} min");
}

string? Option(string name)
{
    int index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
}
