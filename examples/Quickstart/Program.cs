// Quickstart: a folder of colour images -> a pretrained network by name -> fine-tune -> evaluate -> save -> predict one image
// with a PredictionEngine. The region "quickstart" below is the code the README shows; CI builds and runs this program.
//
// Usage: dotnet run -c Release --project examples/Quickstart -- [--dir D] [--model resnet50] [--weights W] [--epochs N] [--per-class N]
//        dotnet run -c Release --project examples/Quickstart -- --generate-only D [--per-class N] [--seed S]
//   --dir D         working folder (default: ./quickstart). Its photos/ subfolder is used as it is when it exists; otherwise
//                   a small collection of generated colour images (circles, squares, triangles) is written there.
//   --weights W     the pretrained weights. Default: none, so the network starts from random weights (no download needed).
//                   Also from the environment variable CNN_QUICKSTART_WEIGHTS.
//   --generate-only writes the sample image folder to D and stops (the docs' picture script uses it).
using System.Globalization;
using Cnn.Examples.Quickstart;
using Cnn.MLNet;
using Cnn.MLNet.Data;
using Cnn.MLNet.Persistence;
using Microsoft.ML;

int perClass = Option("--per-class") is { } perClassText ? int.Parse(perClassText, CultureInfo.InvariantCulture) : 20;
if (Option("--generate-only") is { } generateFolder)
{
    int seed = Option("--seed") is { } seedText ? int.Parse(seedText, CultureInfo.InvariantCulture) : 0;
    SampleImages.Write(generateFolder, perClass, seed: seed);
    Console.WriteLine($"wrote {perClass} images of each of {string.Join(", ", SampleImages.Classes)} to {Path.GetFullPath(generateFolder)}");
    return 0;
}

string architecture = Option("--model") ?? "resnet50";
int epochs = Option("--epochs") is { } epochsText ? int.Parse(epochsText, CultureInfo.InvariantCulture) : 3;
string? weights = Option("--weights") ?? Environment.GetEnvironmentVariable("CNN_QUICKSTART_WEIGHTS");
string workFolder = Path.GetFullPath(Option("--dir") ?? "quickstart");
Directory.CreateDirectory(workFolder);
Directory.SetCurrentDirectory(workFolder);
if (!Directory.Exists("photos"))
{
    SampleImages.Write("photos", perClass);
    Console.WriteLine($"Generated {perClass} colour images per class in {Path.Combine(workFolder, "photos")}.");
}
if (weights is null)
    Console.WriteLine($"No pretrained weights asked for: {architecture} starts from random weights. On a machine with internet pass " +
                      "--weights IMAGENET1K_V2 (or set CNN_QUICKSTART_WEIGHTS) to fine-tune ImageNet weights.");

// The README shows this region with the weights by name (Model = new() { Weights = "IMAGENET1K_V2" }); docs/build.sh checks
// that the two agree. Weights takes a name (DEFAULT, IMAGENET1K_V2, hf-hub:timm/resnet50.a1_in1k) or a file path.
#region quickstart
var ml = new MLContext(seed: 0);
var data = ImageDataViews.ToDataView(ml, ImageFolderDataset.Scan("photos"));   // photos/<class>/<image>
var split = ml.Data.TrainTestSplit(data, testFraction: 0.2, seed: 0);
var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(CnnTrainer.Create(architecture, new CnnTrainerOptions
    {
        Model = new() { Weights = weights },   // "IMAGENET1K_V2", "DEFAULT", "hf-hub:…" or a file; null: random initialisation
        Epochs = epochs,
    }, ml))
    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));
var model = pipeline.Fit(split.TrainSet);

var metrics = ml.MulticlassClassification.Evaluate(model.Transform(split.TestSet));
Console.WriteLine($"test accuracy {metrics.MicroAccuracy:P1}, log-loss {metrics.LogLoss:0.000}");
CnnPipelineFile.Save(ml, model, data.Schema, "model.zip");

var loaded = CnnPipelineFile.Load(ml, "model.zip", out _);
var engine = ml.Model.CreatePredictionEngine<ImagePathRow, Prediction>(loaded);
var prediction = engine.Predict(new ImagePathRow { Image = "photos/circle/0.png" });
Console.WriteLine($"photos/circle/0.png: {prediction.PredictedClass} ({prediction.Score.Max():P0})");
#endregion
return 0;

string? Option(string name)
{
    int index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
}

#region prediction
/// <summary>What the PredictionEngine returns: the class name and the probability of each class.</summary>
internal sealed class Prediction
{
    public string PredictedClass { get; set; } = "";
    public float[] Score { get; set; } = [];
}
#endregion
