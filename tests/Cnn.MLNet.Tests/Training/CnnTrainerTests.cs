using System.Diagnostics;
using Cnn.MLNet.Data;
using Cnn.MLNet.Persistence;
using Cnn.MLNet.Scoring;
using Cnn.MLNet.Training;
using Cnn.MLNet;
using Cnn.Tests.Shared;
using Microsoft.ML.Data;
using Microsoft.ML;

namespace Cnn.MLNet.Tests.Training;

[TestClass]
public sealed class CnnTrainerTests
{
    private static CnnTrainerOptions SmallOptions(int epochs = 2) => new()
    {
        ImageColumnName = "Image",
        Model = new() { InChannels = 1, ImageSize = 32 },
        CropPct = 1.0,
        Precision = CnnPrecision.Float32, MemoryFormat = CnnMemoryFormat.Contiguous, InferenceEngine = CnnInferenceEngine.TorchSharp,
        Epochs = epochs,
        BatchSize = 32,
        LearningRate = 2e-3,
        Augment = false,
        Seed = 7,
    };

    private sealed class Prediction
    {
        public float[] Score { get; set; } = Array.Empty<float>();
        public string PredictedClass { get; set; } = "";
    }

    [TestMethod]
    public void FitsEvaluatesSavesAndLoadsAsOnePipeline()
    {
        var ml = new MLContext(seed: 1);
        var messages = new List<string>();
        ml.Log += (_, e) => { if (e.Source == "CnnTrainer") lock (messages) messages.Add(e.Message); };
        var epochs = new List<EpochMetrics>();
        var options = SmallOptions();
        options.EpochCompleted = epochs.Add;
        var train = FashionMnistFixture.View(ml, train: true, perClass: 40);
        var test = FashionMnistFixture.View(ml, train: false, perClass: 20);
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.Cnn(options))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));
        var model = pipeline.Fit(train);

        Assert.AreEqual(2, epochs.Count);
        Assert.IsTrue(epochs[1].TrainLoss < epochs[0].TrainLoss, $"loss should fall: {epochs[0]} -> {epochs[1]}");
        Assert.IsTrue(messages.Any(m => m.Contains("epoch 2", StringComparison.Ordinal)), "progress goes through the MLContext log");

        var scored = model.Transform(test);
        var metrics = ml.MulticlassClassification.Evaluate(scored);
        Assert.IsTrue(metrics.MicroAccuracy > 0.3, $"accuracy {metrics.MicroAccuracy:P1} should beat chance (10%) clearly");
        var scoreColumn = scored.Schema["Score"];
        Assert.AreEqual(10, ((VectorDataViewType)scoreColumn.Type).Size);
        var predictedLabel = scored.Schema["PredictedLabel"];
        Assert.AreEqual(10UL, ((KeyDataViewType)predictedLabel.Type).Count);

        var before = ScoresOf(ml, scored);
        var classes = ml.Data.CreateEnumerable<Prediction>(scored, reuseRowObject: false).Select(p => p.PredictedClass).ToList();
        CollectionAssert.IsSubsetOf(classes.Distinct().ToList(), FashionMnist.ClassNames.ToList());

        using var folder = new TempDirectory();
        string path = folder.File("model.zip");
        CnnPipelineFile.Save(ml, model, train.Schema, path);
        var loaded = CnnPipelineFile.Load(new MLContext(), path, out var inputSchema);
        Assert.IsNotNull(inputSchema.GetColumnOrNull("Image"));
        var after = ScoresOf(ml, loaded.Transform(test));
        Assert.AreEqual(before.Count, after.Count);
        for (int i = 0; i < before.Count; i++)
            CollectionAssert.AreEqual(before[i], after[i], $"row {i}: loaded model must give identical scores");

        // Row by row through a prediction engine.
        var engine = ml.Model.CreatePredictionEngine<EncodedImageRow, Prediction>(loaded);
        var firstRow = ml.Data.CreateEnumerable<EncodedImageRow>(test, reuseRowObject: false).First();
        var single = engine.Predict(firstRow);
        // A batch of one may use other convolution kernels than a full batch: equal to float rounding.
        for (int c = 0; c < before[0].Length; c++)
            Assert.AreEqual(before[0][c], single.Score[c], 1e-5f, $"class {c}");
        Assert.AreEqual(classes[0], single.PredictedClass);
    }

    internal static List<float[]> ScoresOf(MLContext ml, IDataView scored)
    {
        var result = new List<float[]>();
        using var cursor = scored.GetRowCursor(new[] { scored.Schema["Score"] });
        var getter = cursor.GetGetter<VBuffer<float>>(scored.Schema["Score"]);
        VBuffer<float> value = default;
        while (cursor.MoveNext())
        {
            getter(ref value);
            result.Add(value.DenseValues().ToArray());
        }
        return result;
    }

    [TestMethod]
    public void SchemaErrorsAreReportedBeforeTraining()
    {
        var ml = new MLContext();
        var data = FashionMnistFixture.View(ml, train: true, perClass: 2);
        var estimator = CnnTrainer.ResNet18(SmallOptions());
        // The label is text, not a key.
        var notKey = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => estimator.Fit(data));
        StringAssert.Contains(notKey.Message, "MapValueToKey");
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
        // A missing image column.
        var options = SmallOptions();
        options.ImageColumnName = "Picture";
        var missing = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => CnnTrainer.ResNet18(options).Fit(keyed));
        StringAssert.Contains(missing.Message, "'Picture' is missing");
        // A column that holds no images.
        options.ImageColumnName = "Label";
        var notImage = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => CnnTrainer.ResNet18(options).Fit(keyed));
        StringAssert.Contains(notImage.Message, "not an image");
        // Unknown architecture and bad option values fail at construction.
        Assert.ThrowsExactly<ArgumentException>(() => CnnTrainer.Create("resnet5O"));
        var bad = SmallOptions();
        bad.BatchSize = 0;
        var badError = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => CnnTrainer.ResNet18(bad));
        StringAssert.Contains(badError.Message, "BatchSize");
    }

    [TestMethod]
    public void EmptySingleClassAndMissingLabelsAreClearErrors()
    {
        var ml = new MLContext();
        var data = FashionMnistFixture.View(ml, train: true, perClass: 3, classes: 2);
        var mapper = ml.Transforms.Conversion.MapValueToKey("Label").Fit(data);

        var empty = mapper.Transform(ml.Data.LoadFromEnumerable(Array.Empty<EncodedImageRow>()));
        var emptyError = Assert.ThrowsExactly<InvalidOperationException>(() => CnnTrainer.ResNet18(SmallOptions()).Fit(empty));
        StringAssert.Contains(emptyError.Message, "no rows");

        var oneClassRows = ml.Data.CreateEnumerable<EncodedImageRow>(data, false).Where(r => r.Label == FashionMnist.ClassNames[0]).ToList();
        var oneClass = mapper.Transform(ml.Data.LoadFromEnumerable(oneClassRows));
        var singleError = Assert.ThrowsExactly<InvalidOperationException>(() => CnnTrainer.ResNet18(SmallOptions()).Fit(oneClass));
        StringAssert.Contains(singleError.Message, "single class");

        var unknownLabel = ml.Data.CreateEnumerable<EncodedImageRow>(data, false).ToList();
        unknownLabel[4].Label = "Not a class";
        var withUnknown = mapper.Transform(ml.Data.LoadFromEnumerable(unknownLabel));
        var missingError = Assert.ThrowsExactly<InvalidDataException>(() => CnnTrainer.ResNet18(SmallOptions()).Fit(withUnknown));
        StringAssert.Contains(missingError.Message, "Row 4");
    }

    [TestMethod]
    public void CorruptImageIsNamedOrSkippedWhenAsked()
    {
        var ml = new MLContext();
        var rows = ml.Data.CreateEnumerable<EncodedImageRow>(FashionMnistFixture.View(ml, true, perClass: 8, classes: 2), false).ToList();
        rows[5].Image = rows[5].Image.Take(20).ToArray(); // truncated PNG
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(rows)).Transform(ml.Data.LoadFromEnumerable(rows));
        var options = SmallOptions(epochs: 1);
        var error = Assert.ThrowsExactly<Cnn.MLNet.Imaging.ImageDecodeException>(() => CnnTrainer.ResNet18(options).Fit(data));
        StringAssert.Contains(error.Message, "row 5");

        var skipping = SmallOptions(epochs: 1);
        skipping.SkipCorruptImages = true;
        var messages = new List<string>();
        ml.Log += (_, e) => { if (e.Source == "CnnTrainer") lock (messages) messages.Add(e.Message); };
        using var model = ml.MulticlassClassification.Trainers.Cnn(skipping).Fit(data);
        Assert.IsTrue(messages.Any(m => m.Contains("1 corrupt training images skipped", StringComparison.Ordinal)), string.Join("\n", messages));
    }

    [TestMethod]
    public void DivergingLossStopsWithEpochAndStep()
    {
        var ml = new MLContext();
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(FashionMnistFixture.View(ml, true, 16, 2)).Transform(FashionMnistFixture.View(ml, true, 16, 2));
        var options = SmallOptions(epochs: 3);
        options.Optimizer = CnnOptimizer.Sgd;
        options.LearningRate = 1e12;
        var error = Assert.ThrowsExactly<TrainingDivergedException>(() => CnnTrainer.ResNet18(options).Fit(data));
        StringAssert.Contains(error.Message, "Lower the learning rate");
        Assert.IsTrue(error.Epoch >= 1 && error.Step >= 1);
    }

    [TestMethod]
    public void CancellationStopsWithinOneBatch()
    {
        var ml = new MLContext();
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(FashionMnistFixture.View(ml, true, 20, 2)).Transform(FashionMnistFixture.View(ml, true, 20, 2));
        using var cancel = new CancellationTokenSource();
        var options = SmallOptions(epochs: 50);
        options.CancellationToken = cancel.Token;
        int completed = 0;
        options.EpochCompleted = _ => { completed++; cancel.Cancel(); };
        Assert.Throws<OperationCanceledException>(() => CnnTrainer.ResNet18(options).Fit(data));
        Assert.AreEqual(1, completed, "no further epoch may complete after cancellation");
    }

    [TestMethod]
    public void MLContextCancelExecutionStopsTrainingAndProgressGoesToItsLog()
    {
        var ml = new MLContext();
        var messages = new List<string>();
        ml.Log += (_, e) => { if (e.Source == "CnnTrainer") lock (messages) messages.Add(e.Message); };
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(FashionMnistFixture.View(ml, true, 20, 2)).Transform(FashionMnistFixture.View(ml, true, 20, 2));
        var options = SmallOptions(epochs: 50);
        int completed = 0;
        options.EpochCompleted = _ =>
        {
            completed++;
            // MLContext.CancelExecution is internal in Microsoft.ML 5.0.1; the Microsoft.ML.Experimental package makes it public.
            typeof(MLContext).GetMethod("CancelExecution", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic)!
                .Invoke(ml, null);
        };
        Assert.Throws<OperationCanceledException>(() => CnnTrainer.ResNet18(options, ml).Fit(data));
        Assert.AreEqual(1, completed, "no further epoch may complete after MLContext.CancelExecution");
        lock (messages) Assert.IsTrue(messages.Any(m => m.Contains("epoch 1", StringComparison.OrdinalIgnoreCase)), string.Join("\n", messages));
    }

    public static IEnumerable<object[]> SmallestOfEachFamily => FamilyCases.SmallestRows;

    /// <summary>
    /// The smallest variant of every registered family trains through CnnTrainer for one step (8 images at the smallest side it
    /// accepts, at least 32; a ViT is built for that size) and scores every row. Auxiliary classifiers, which need larger inputs,
    /// are left out where the family has them (AuxiliaryHeadTrainingTests trains them).
    /// </summary>
    [TestMethod]
    [DynamicData(nameof(SmallestOfEachFamily))]
    public void EveryFamilyTrainsThroughTheTrainer(string architecture)
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(FashionMnistFixture.View(ml, true, 8, 2)).Transform(FashionMnistFixture.View(ml, true, 8, 2));
        var options = SmallOptions(epochs: 1);
        options.Model = options.Model with { InChannels = 3, ImageSize = FamilyCases.InputSize(architecture) };
        if (Cnn.Backbones.Models.ModelRegistry.GetDefinition(architecture).Capabilities.AuxLogits) options.Model = options.Model with { AuxLogits = false };
        options.BatchSize = 16;
        var epochs = new List<EpochMetrics>();
        options.EpochCompleted = epochs.Add;
        using var model = CnnTrainer.Create(architecture, options, ml).Fit(data);
        Assert.HasCount(1, epochs);
        Assert.IsTrue(double.IsFinite(epochs[0].TrainLoss), $"{architecture}: loss {epochs[0].TrainLoss}");
        var scores = ScoresOf(ml, model.Transform(data));
        Assert.HasCount(16, scores);
        foreach (var row in scores)
        {
            Assert.HasCount(2, row);
            Assert.AreEqual(1.0, row.Sum(), 1e-4, $"{architecture}: probabilities sum to 1");
        }
    }

    /// <summary>
    /// Each named CnnTrainer factory builds a trainer for a registered architecture, no two the same. A registered architecture
    /// without a named factory is trained through <see cref="CnnTrainer.Create"/> (a new family needs no factory: see
    /// <see cref="EveryFamilyTrainsThroughTheTrainer"/>).
    /// </summary>
    [TestMethod]
    public void EveryNamedFactoryBuildsARegisteredArchitecture()
    {
        var factories = typeof(CnnTrainer).GetMethods(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
            .Where(m => m.ReturnType == typeof(CnnEstimator) && m.Name != nameof(CnnTrainer.Create)
                        && m.GetParameters().Select(p => p.ParameterType).SequenceEqual(new[] { typeof(CnnTrainerOptions), typeof(MLContext) }))
            .ToList();
        var built = factories.Select(f => ((CnnEstimator)f.Invoke(null, new object?[] { null, null })!).Options.Architecture).ToList();
        CollectionAssert.AllItemsAreUnique(built, "two factories build the same architecture");
        Assert.IsNotEmpty(built);
        CollectionAssert.IsSubsetOf(built, Cnn.Backbones.Models.ModelRegistry.List().Select(m => m.Name).ToList(), "every named factory builds a registered architecture");
    }

    private sealed class FileRow
    {
        public string ImagePath { get; set; } = "";
        public string FullPath { get; set; } = "";
        public string Label { get; set; } = "";
    }

    /// <summary>
    /// The image column as ML.NET's image steps make it: <c>LoadImages</c> (MLImage), <c>LoadRawImageBytes</c> (encoded bytes),
    /// or the file path itself. The same PNG files give the same trained model and scores each way.
    /// </summary>
    [TestMethod]
    [DoNotParallelize] // compares same-seed runs: no other test may draw from TorchSharp's global generator meanwhile
    public void MLNetImageLoadingStepsAndPathColumnsTrainAlike()
    {
        using var folder = new TempDirectory();
        var slice = FashionMnistFixture.Slice(train: true, perClass: 8, classes: 2);
        var rows = slice.Samples.Select((s, i) =>
        {
            string name = $"img{i}.png";
            File.WriteAllBytes(folder.File(name), ImageDataViews.Encode(s));
            return new FileRow { ImagePath = name, FullPath = folder.File(name), Label = slice.ClassNames[s.Label] };
        }).ToList();

        List<float[]> Train(Func<MLContext, IEstimator<ITransformer>>? loadStep, string imageColumn)
        {
            var ml = new MLContext(seed: 1);
            var data = ml.Data.LoadFromEnumerable(rows);
            var options = SmallOptions(epochs: 1);
            options.ImageColumnName = imageColumn;
            IEstimator<ITransformer> pipeline = ml.Transforms.Conversion.MapValueToKey("Label");
            if (loadStep is not null) pipeline = pipeline.Append(loadStep(ml));
            pipeline = pipeline.Append(CnnTrainer.ResNet18(options, ml));
            var model = pipeline.Fit(data);
            try
            {
                return ScoresOf(ml, model.Transform(data));
            }
            finally
            {
                foreach (var stage in CnnPipelineFile.Stages(model).OfType<IDisposable>()) stage.Dispose();
            }
        }

        var fromImages = Train(ml => ml.Transforms.LoadImages("Image", folder.Path, "ImagePath"), "Image");
        var fromBytes = Train(ml => ml.Transforms.LoadRawImageBytes("Image", folder.Path, "ImagePath"), "Image");
        var fromPaths = Train(null, "FullPath");
        Assert.HasCount(rows.Count, fromImages);
        for (int i = 0; i < rows.Count; i++)
        {
            for (int c = 0; c < 2; c++)
            {
                Assert.AreEqual(fromBytes[i][c], fromImages[i][c], 1e-5, $"row {i}: LoadImages vs LoadRawImageBytes");
                Assert.AreEqual(fromBytes[i][c], fromPaths[i][c], 1e-5, $"row {i}: LoadRawImageBytes vs file paths");
            }
        }
    }

    [TestMethod]
    public void WeightsThatDoNotFitTheArchitectureAreAClearErrorNamingTheFile()
    {
        var ml = new MLContext();
        using var folder = new TempDirectory();
        string weights = folder.File("resnet18.safetensors");
        using (var source = Cnn.Backbones.Models.ModelRegistry.Create("resnet18"))
        using (var dict = Cnn.Backbones.Weights.StateDict.FromModule(source))
            Cnn.Backbones.Weights.SafeTensors.Write(weights, dict);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(FashionMnistFixture.View(ml, true, 4, 2)).Transform(FashionMnistFixture.View(ml, true, 4, 2));
        var options = SmallOptions(epochs: 1);
        options.Model = options.Model with { InChannels = 3, WeightsPath = weights };
        var error = Assert.ThrowsExactly<Cnn.Backbones.Weights.WeightLoadException>(() => CnnTrainer.ResNet34(options, ml).Fit(data));
        StringAssert.Contains(error.Message, weights);
        StringAssert.Contains(error.Message, "resnet34");
        StringAssert.Contains(error.Message, "layer1.2"); // resnet34 has three blocks in layer1, resnet18 two: named as missing

        var missing = SmallOptions();
        missing.Model = missing.Model with { WeightsPath = folder.File("nowhere.pth") };
        StringAssert.Contains(Assert.ThrowsExactly<FileNotFoundException>(() => CnnTrainer.ResNet18(missing, ml)).Message, "nowhere.pth");
    }

    [TestMethod]
    public void FrozenBackboneKeepsItsWeightsAndBatchNormStatistics()
    {
        var ml = new MLContext();
        using var folder = new TempDirectory();
        string weights = folder.File("start.safetensors");
        using (var start = Cnn.Backbones.Models.ModelRegistry.Create("resnet18", new() { NumClasses = 1000, InChannels = 1 }))
        using (var dict = Cnn.Backbones.Weights.StateDict.FromModule(start))
            Cnn.Backbones.Weights.SafeTensors.Write(weights, dict);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(FashionMnistFixture.View(ml, true, 16, 3)).Transform(FashionMnistFixture.View(ml, true, 16, 3));
        var options = SmallOptions(epochs: 2);
        options.Model = options.Model with { WeightsPath = weights };
        options.Freeze = FreezeMode.Backbone;
        using var model = CnnTrainer.ResNet18(options).Fit(data);
        using var original = Cnn.Backbones.Weights.SafeTensors.Read(weights);
        var trained = model.Network.Model.state_dict();
        foreach (var (name, tensor) in original)
        {
            if (name.StartsWith("fc.", StringComparison.Ordinal)) continue;
            Assert.IsTrue(trained[name].to(TorchSharp.torch.CPU).eq(tensor).all().item<bool>(), $"{name} must not change when the backbone is frozen");
        }
        Assert.AreEqual(3L, trained["fc.weight"].shape[0]);
    }

    [TestMethod]
    [DoNotParallelize] // counts process-wide tensors and resident memory
    public void MemoryStaysFlatAcrossEpochs()
    {
        var ml = new MLContext();
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(FashionMnistFixture.View(ml, true, 24, 4)).Transform(FashionMnistFixture.View(ml, true, 24, 4));
        var options = SmallOptions(epochs: 8);
        options.Augment = true;
        var probe = new EpochMemoryProbe();
        options.EpochCompleted = _ => probe.Sample();
        using var model = CnnTrainer.ResNet18(options).Fit(data);
        probe.AssertFlat();
    }
}
