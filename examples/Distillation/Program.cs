// Knowledge distillation on Fashion-MNIST: does a teacher help a small model that has few labels?
//   1. teacher: ResNet-18 (1 channel, 28 px) trained on all training labels;
//   2. baseline: LeNet-5 trained on a class-balanced subset of labelled images alone;
//   3. distilled: LeNet-5 trained from the teacher on the same labelled subset plus every other training image, unlabelled.
// Prints each model's test accuracy and wall time. A benchmark, not a unit test.
// Usage: dotnet run -c Release --project examples/Distillation -- [--labelled 2000] [--teacher-epochs 10] [--baseline-epochs 30]
//        [--student-epochs 15] [--temperature 4] [--alpha 0.5] [--teacher-labels N] [--unlabelled N] [--train-limit N]
//        [--teacher-model teacher.zip] [--seed 0]
// Defaults are the full experiment (teacher on all 60,000 labels, 58,000 unlabelled images). On a slow or shared CPU,
// --teacher-labels N trains the teacher on a class-balanced subset of N labelled images and --unlabelled N caps the unlabelled set.
using System.Diagnostics;
using System.Globalization;
using Cnn.Backbones.Native;
using Cnn.MLNet;
using Cnn.MLNet.Data;
using Cnn.MLNet.Distillation;
using Cnn.MLNet.Persistence;
using Cnn.MLNet.Scoring;
using Microsoft.ML;
using TorchSharp;

int labelledCount = Argument("--labelled", 2000);
int teacherEpochs = Argument("--teacher-epochs", 10);
int baselineEpochs = Argument("--baseline-epochs", 30);
int studentEpochs = Argument("--student-epochs", 15);
double temperature = ArgumentDouble("--temperature", 4);
double alpha = ArgumentDouble("--alpha", 0.5);
int trainLimit = Argument("--train-limit", int.MaxValue);
int teacherLabels = Argument("--teacher-labels", int.MaxValue);
int unlabelledCap = Argument("--unlabelled", int.MaxValue);
int seed = Argument("--seed", 0);
string? teacherModel = ArgumentString("--teacher-model");

TorchRuntime.EnsureLoaded();
var train = FashionMnist.Load(FashionMnistSplit.Train);
var test = FashionMnist.Load(FashionMnistSplit.Test);
var trainSamples = train.Samples.Take(trainLimit).ToList();
Console.WriteLine($"Fashion-MNIST from {(train.Source == FashionMnistSource.Folder ? train.Folder : "the embedded subset")}: " +
                  $"{trainSamples.Count:N0} training, {test.Count:N0} test images; {Environment.ProcessorCount} cores, torch threads {torch.get_num_threads()}");

// A class-balanced, seeded labelled subset; every other training image is unlabelled.
var random = new Random(seed);
var labelledIndices = trainSamples.Select((s, i) => (s.Label, i)).GroupBy(t => t.Label)
    .SelectMany(g => g.Select(t => t.i).OrderBy(_ => random.Next()).Take(labelledCount / train.ClassNames.Count))
    .ToHashSet();
var labelled = new ImageDataset(trainSamples.Where((_, i) => labelledIndices.Contains(i)).ToList(), train.ClassNames);
var unlabelledIndices = Enumerable.Range(0, trainSamples.Count).Where(i => !labelledIndices.Contains(i)).OrderBy(_ => random.Next()).Take(unlabelledCap).ToHashSet();
var teacherSamples = Balanced(trainSamples, teacherLabels, train.ClassNames.Count, new Random(seed + 1));
var ml = new MLContext(seed: seed);
var testView = ImageDataViews.ToDataView(ml, test);
Console.WriteLine($"labelled subset: {labelled.Count:N0} images ({string.Join("/", labelled.CountPerClass())} per class); unlabelled: {unlabelledIndices.Count:N0}; teacher labels: {teacherSamples.Count:N0}");
Console.WriteLine();

// 1. Teacher: ResNet-18 on every training label.
var clock = Stopwatch.StartNew();
ITransformer teacherPipeline;
bool teacherLoaded = teacherModel is not null && File.Exists(teacherModel);
if (teacherLoaded)
{
    teacherPipeline = CnnPipelineFile.Load(ml, teacherModel!, out _);
    Console.WriteLine($"teacher loaded from {teacherModel}");
}
else
{
    var teacherOptions = new CnnTrainerOptions
    {
        // The recipe of examples/FashionMnist's ResNet-18 (its --save writes a teacher this example can load).
        Model = new() { InChannels = 1, ImageSize = 28 }, CropPct = 1.0, Mean = [0.2860f], Std = [0.3530f], Augment = true, AugmentMinScale = 1.0,
        Epochs = teacherEpochs, BatchSize = 128, LearningRate = 2e-3, WeightDecay = 1e-4, DecayNormAndBias = true, WarmupEpochs = 0.2, Seed = seed,
        EpochCompleted = m => Console.WriteLine("  teacher  " + m),
    };
    var trainView = ImageDataViews.ToDataView(ml, new ImageDataset(teacherSamples, train.ClassNames));
    teacherPipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(CnnTrainer.ResNet18(teacherOptions, ml)).Fit(trainView);
    if (teacherModel is not null) CnnPipelineFile.Save(ml, teacherPipeline, trainView.Schema, teacherModel);
}
double teacherSeconds = clock.Elapsed.TotalSeconds;
double teacherAccuracy = Accuracy(teacherPipeline);
Console.WriteLine(Invariant($"teacher   resnet18: test accuracy {100 * teacherAccuracy:0.00}%  ({teacherSeconds:0}s)"));

// 2. Baseline: LeNet-5 on the labelled subset alone.
var studentShape = (Channels: 1, Size: 32); // LeNet-5's native 32 px input
clock.Restart();
var baselineOptions = new CnnTrainerOptions
{
    Model = new() { InChannels = studentShape.Channels, ImageSize = studentShape.Size }, CropPct = 1.0, Epochs = baselineEpochs, BatchSize = 64, LearningRate = 2e-3,
    Augment = false, DecayNormAndBias = true, Seed = seed,
};
var labelledView = ImageDataViews.ToDataView(ml, labelled);
var baseline = ml.Transforms.Conversion.MapValueToKey("Label").Append(CnnTrainer.Create("lenet5", baselineOptions, ml)).Fit(labelledView);
double baselineSeconds = clock.Elapsed.TotalSeconds;
double baselineAccuracy = Accuracy(baseline);
Console.WriteLine(Invariant($"baseline  lenet5 on {labelled.Count} labels: test accuracy {100 * baselineAccuracy:0.00}%  ({baselineSeconds:0}s, {baselineEpochs} epochs)"));

// 3. Distilled: LeNet-5 from the teacher on the labelled subset + all other training images without labels.
clock.Restart();
using var teacher = DistillationTeacher.FromTransformer(((IEnumerable<ITransformer>)teacherPipeline).OfType<CnnClassifierTransformer>().Single());
var rows = trainSamples.Select((s, i) => (s, i)).Where(t => labelledIndices.Contains(t.i) || unlabelledIndices.Contains(t.i))
    .Select(t => new EncodedImageRow { Image = ImageDataViews.Encode(t.s), Label = labelledIndices.Contains(t.i) ? train.ClassNames[t.s.Label] : "" });
var distillView = ml.Data.LoadFromEnumerable(rows);
var distillOptions = new CnnDistillationOptions
{
    Student = new() { InChannels = studentShape.Channels, ImageSize = studentShape.Size, DropRate = 0 }, CropPct = 1.0, Epochs = studentEpochs, BatchSize = 128, LearningRate = 2e-3,
    Augment = false, DecayNormAndBias = true, Temperature = temperature, Alpha = alpha, Seed = seed,
    EpochCompleted = m => Console.WriteLine("  student  " + m),
};
var distilled = teacher.MapLabelsToKeys(ml, "Label").Append(CnnTrainer.Distill(teacher, "lenet5", distillOptions, ml)).Fit(distillView);
double distilledSeconds = clock.Elapsed.TotalSeconds;
double distilledAccuracy = Accuracy(distilled);
Console.WriteLine(Invariant($"distilled lenet5 on {labelled.Count} labels + {unlabelledIndices.Count} unlabelled: test accuracy {100 * distilledAccuracy:0.00}%  ({distilledSeconds:0}s, {studentEpochs} epochs, T {temperature}, alpha {alpha})"));

Console.WriteLine();
Console.WriteLine("| model | training data | test accuracy | wall time |");
Console.WriteLine("|---|---|---|---|");
Console.WriteLine(teacherLoaded
    ? Invariant($"| teacher (loaded from {teacherModel}) | as it was trained | {100 * teacherAccuracy:0.00}% | {teacherSeconds:0} s to load |")
    : Invariant($"| teacher ResNet-18 (28 px) | {teacherSamples.Count:N0} labelled, {teacherEpochs} epochs | {100 * teacherAccuracy:0.00}% | {teacherSeconds:0} s |"));
Console.WriteLine(Invariant($"| LeNet-5 alone | {labelled.Count:N0} labelled, {baselineEpochs} epochs | {100 * baselineAccuracy:0.00}% | {baselineSeconds:0} s |"));
Console.WriteLine(Invariant($"| LeNet-5 distilled (T {temperature}, alpha {alpha}) | {labelled.Count:N0} labelled + {unlabelledIndices.Count:N0} unlabelled, {studentEpochs} epochs | {100 * distilledAccuracy:0.00}% | {distilledSeconds:0} s |"));
Console.WriteLine(Invariant($"distillation gain: {100 * (distilledAccuracy - baselineAccuracy):+0.00;-0.00} points"));
return 0;

double Accuracy(ITransformer model)
{
    // Each pipeline maps the test labels with its own MapValueToKey stage, so keys and predictions agree.
    var metrics = ml.MulticlassClassification.Evaluate(model.Transform(testView));
    return metrics.MicroAccuracy;
}

// The first n samples of a seeded shuffle taken round-robin over the classes (all samples when n is not smaller).
static List<ImageSample> Balanced(IReadOnlyList<ImageSample> samples, int n, int classes, Random random)
{
    if (n >= samples.Count) return samples.ToList();
    var rank = new int[classes];
    return samples.OrderBy(_ => random.Next()).Select(s => (s, r: rank[s.Label]++)).OrderBy(t => t.r).ThenBy(t => t.s.Label).Take(n).Select(t => t.s).ToList();
}

static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

int Argument(string name, int fallback) =>
    ArgumentString(name) is { } text ? int.Parse(text, CultureInfo.InvariantCulture) : fallback;

double ArgumentDouble(string name, double fallback) =>
    ArgumentString(name) is { } text ? double.Parse(text, CultureInfo.InvariantCulture) : fallback;

string? ArgumentString(string name)
{
    int index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
}
