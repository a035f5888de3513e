// CNN features feeding an ML.NET trainer: pooled pre-logits of a backbone -> LightGBM (or SDCA) on Fashion-MNIST.
// Usage: dotnet run -c Release --project examples/FeatureExtraction -- [--model resnet18] [--weights file.pth|.safetensors]
//        [--train-per-class 300] [--trainer lightgbm|sdca]
// Without --weights the backbone is randomly initialised (weights are never downloaded): pass torchvision/timm weights,
// or the network of a model you fine-tuned, for useful features.
using System.Diagnostics;
using Cnn.MLNet.Data;
using Cnn.MLNet.Features;
using Cnn.MLNet;
using Microsoft.ML;

string model = Option("--model") ?? "resnet18";
string? weights = Option("--weights");
int perClass = int.Parse(Option("--train-per-class") ?? "300");
string trainer = Option("--trainer") ?? "lightgbm";

var ml = new MLContext(seed: 1);
var trainSet = FashionMnist.Load(FashionMnistSplit.Train);
var testSet = FashionMnist.Load(FashionMnistSplit.Test);
IDataView Take(ImageDataset set, int count) => ImageDataViews.ToDataView(ml, set.TakePerClass(count));
var train = Take(trainSet, perClass);
var test = Take(testSet, Math.Max(perClass / 3, 50));
Console.WriteLine($"Fashion-MNIST ({trainSet.Source}): {perClass} training and {Math.Max(perClass / 3, 50)} test images per class; " +
                  $"{model} features{(weights is null ? " (random init: pass --weights for pretrained features)" : $" from {weights}")}");

var features = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(ml.Transforms.ExtractCnnFeatures(new CnnFeatureOptions
    {
        Architecture = model, Model = new() { WeightsPath = weights, InChannels = 3, ImageSize = 64 }, CropPct = 1.0, BatchSize = 64,
    }));
IEstimator<ITransformer> head = trainer == "sdca"
    ? ml.Transforms.NormalizeMinMax("Features").Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy("Label", "Features"))
    : ml.MulticlassClassification.Trainers.LightGbm("Label", "Features");
var clock = Stopwatch.StartNew();
// Extract once and cache, so the trainer's several passes do not re-run the network.
var featureModel = features.Fit(train);
var cachedTrain = ml.Data.Cache(featureModel.Transform(train));
var classifier = head.Fit(cachedTrain);
var metrics = ml.MulticlassClassification.Evaluate(classifier.Transform(featureModel.Transform(test)));
Console.WriteLine($"{trainer}: test accuracy {metrics.MicroAccuracy:P2} (macro {metrics.MacroAccuracy:P2}), {clock.Elapsed.TotalSeconds:0.0} s");

string? Option(string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}
