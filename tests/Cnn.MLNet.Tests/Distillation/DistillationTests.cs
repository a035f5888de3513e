using System.Diagnostics;
using Cnn.Backbones.Weights;
using Cnn.MLNet.Data;
using Cnn.MLNet.Distillation;
using Cnn.MLNet.Persistence;
using Cnn.MLNet.Scoring;
using Cnn.MLNet.Tests.Training;
using Cnn.Tests.Shared;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Cnn.MLNet.Tests.Distillation;

[TestClass]
public sealed partial class DistillationTests
{
    private const int TeacherPerClass = 5;

    /// <summary>A ResNet-18 teacher fitted on 50 Fashion-MNIST images (5 per class, 32 px, 1 channel), shared by the tests.</summary>
    private static readonly Lazy<(TransformerChain<CnnClassifierTransformer> Pipeline, IDataView Train)> TeacherModel = new(() =>
    {
        var ml = new MLContext(seed: 1);
        var train = FashionMnistFixture.View(ml, train: true, perClass: TeacherPerClass);
        var options = new CnnTrainerOptions
        {
            Model = new() { InChannels = 1, ImageSize = 32 }, CropPct = 1.0, Epochs = 6, BatchSize = 16, LearningRate = 2e-3, Augment = false, Seed = 3,
            Precision = CnnPrecision.Float32, MemoryFormat = CnnMemoryFormat.Contiguous, InferenceEngine = CnnInferenceEngine.TorchSharp,
        };
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(CnnTrainer.ResNet18(options));
        return (pipeline.Fit(train), train);
    }, LazyThreadSafetyMode.ExecutionAndPublication);

    private static CnnClassifierTransformer Teacher => TeacherModel.Value.Pipeline.LastTransformer;

    private static CnnDistillationOptions StudentOptions(int epochs) => new()
    {
        Epochs = epochs, BatchSize = 16, LearningRate = 3e-3, Augment = false, Temperature = 4, Alpha = 0.5, Seed = 5,
        Precision = CnnPrecision.Float32, MemoryFormat = CnnMemoryFormat.Contiguous, InferenceEngine = CnnInferenceEngine.TorchSharp,
    };

    /// <summary>The teacher's 50 training images with their labels, then 50 other images with an empty label (= unlabelled).</summary>
    private static List<EncodedImageRow> LabelledAndUnlabelledRows()
    {
        var labelled = FashionMnistFixture.Slice(train: true, perClass: TeacherPerClass);
        var names = labelled.Samples.Select(s => s.Name).ToHashSet();
        var others = FashionMnistFixture.Slice(train: true, perClass: 2 * TeacherPerClass).Samples.Where(s => !names.Contains(s.Name)).ToList();
        var rows = labelled.Samples.Select(s => new EncodedImageRow { Image = ImageDataViews.Encode(s), Label = labelled.ClassNames[s.Label] }).ToList();
        rows.AddRange(others.Select(s => new EncodedImageRow { Image = ImageDataViews.Encode(s), Label = "" }));
        return rows;
    }

    private static int[] Predictions(IDataView scored)
    {
        var result = new List<int>();
        using var cursor = scored.GetRowCursor(new[] { scored.Schema["PredictedLabel"] });
        var getter = cursor.GetGetter<uint>(scored.Schema["PredictedLabel"]);
        uint key = 0;
        while (cursor.MoveNext())
        {
            getter(ref key);
            result.Add((int)key);
        }
        return result.ToArray();
    }

    [TestMethod]
    public void DistillsResNetIntoLeNetWithUnlabelledRows()
    {
        var ml = new MLContext(seed: 2);
        var messages = new List<string>();
        ml.Log += (_, e) => { if (e.Source == "CnnDistillation") lock (messages) messages.Add(e.Message); };
        using var teacher = DistillationTeacher.FromTransformer(Teacher);
        var rows = LabelledAndUnlabelledRows();
        var data = ml.Data.LoadFromEnumerable(rows);
        var metrics = new List<DistillationEpochMetrics>();
        var options = StudentOptions(epochs: 20);
        options.Alpha = 0.1; // mostly imitate the teacher, which is far from perfect on its 50 images
        options.EpochCompleted = metrics.Add;
        var pipeline = teacher.MapLabelsToKeys(ml, "Label")
            .Append(CnnTrainer.Distill(teacher, "lenet5", options, ml))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));
        var model = pipeline.Fit(data);
        using var student = model.OfType<CnnClassifierTransformer>().Single();

        Assert.AreEqual("lenet5", student.Architecture);
        Assert.AreEqual(10, student.NumClasses);
        CollectionAssert.AreEqual(Teacher.ClassNames.ToList(), student.ClassNames.ToList());
        Assert.AreEqual(20, metrics.Count);
        Assert.AreEqual(50L, metrics[0].LabelledImages, metrics[0].ToString());
        Assert.AreEqual(50L, metrics[0].UnlabelledImages, metrics[0].ToString());
        Assert.IsNotNull(metrics[^1].StudentAccuracy);
        Assert.IsNotNull(metrics[^1].HardLoss);
        Assert.IsTrue(metrics[^1].Loss < metrics[0].Loss, $"the loss must fall: {metrics[0]} -> {metrics[^1]}");
        Assert.IsTrue(metrics[^1].TeacherAgreement > metrics[0].TeacherAgreement, $"agreement must rise: {metrics[0]} -> {metrics[^1]}");
        Assert.IsTrue(messages.Any(m => m.Contains("agreement", StringComparison.Ordinal)), "progress goes through the MLContext log");
        Assert.IsTrue(messages.Any(m => m.Contains("computed once and cached", StringComparison.Ordinal)), "without augmentation the teacher runs once");

        // The student imitates the teacher on the training images, labelled and unlabelled: more often than the teacher's most frequent class.
        var scoredByTeacher = TeacherModel.Value.Pipeline.LastTransformer.Transform(data);
        var teacherPredictions = Predictions(scoredByTeacher);
        var scored = model.Transform(data);
        var studentPredictions = Predictions(scored);
        double agreement = teacherPredictions.Zip(studentPredictions).Count(p => p.First == p.Second) / (double)rows.Count;
        double majority = teacherPredictions.GroupBy(p => p).Max(g => g.Count()) / (double)rows.Count;
        Console.WriteLine($"first: {metrics[0]}\nlast: {metrics[^1]}\nstudent/teacher agreement {agreement:P1}, teacher majority class {majority:P1}");
        Assert.IsTrue(agreement > 0.5 && agreement > majority,
            $"student/teacher agreement {agreement:P1} must be a majority and beat the teacher's most frequent class ({majority:P1})");

        // A normal model: evaluate, save, load, identical scores.
        var labelledOnly = ml.Data.FilterRowsByMissingValues(scored, "Label");
        var evaluation = ml.MulticlassClassification.Evaluate(labelledOnly);
        Assert.IsTrue(evaluation.MicroAccuracy > 0.1, $"accuracy {evaluation.MicroAccuracy:P1}");
        using var folder = new TempDirectory();
        string path = folder.File("student.zip");
        CnnPipelineFile.Save(ml, model, data.Schema, path);
        var loaded = CnnPipelineFile.Load(new MLContext(), path, out _);
        var before = CnnTrainerTests.ScoresOf(ml, scored);
        var after = CnnTrainerTests.ScoresOf(ml, loaded.Transform(data));
        for (int i = 0; i < before.Count; i++)
            CollectionAssert.AreEqual(before[i], after[i], $"row {i}: the loaded student must give identical scores");
        var classes = ml.Data.CreateEnumerable<PredictedClassRow>(loaded.Transform(data), reuseRowObject: false).Select(p => p.PredictedClass).Distinct().ToList();
        CollectionAssert.IsSubsetOf(classes, FashionMnist.ClassNames.ToList());
    }

    /// <summary>
    /// With augmentation the teacher runs on every batch: in eval mode and under no-grad, so its weights and BatchNorm statistics
    /// come out bit-for-bit unchanged. A student given weights starts from them (a learning rate of 1e-12 leaves them in place).
    /// </summary>
    [TestMethod]
    public void TeacherStaysUnchangedAndTheStudentStartsFromItsOwnWeights()
    {
        var ml = new MLContext(seed: 2);
        using var teacher = DistillationTeacher.FromTransformer(Teacher);
        var teacherModel = teacher.Network.Model;
        var before = teacherModel.state_dict().ToDictionary(e => e.Key, e => e.Value.detach().clone());
        bool wasTraining = teacherModel.training;

        using var folder = new TempDirectory();
        string studentWeights = folder.File("lenet5-start.safetensors");
        using (var start = Cnn.Backbones.Models.ModelRegistry.Create("lenet5"))
        using (var dict = StateDict.FromModule(start))
            SafeTensors.Write(studentWeights, dict);

        var options = StudentOptions(epochs: 1);
        options.Augment = true;
        options.LearningRate = 1e-12;
        options.Student = new() { WeightsPath = studentWeights, InChannels = teacher.InputChannels, DropRate = 0 };
        var data = ml.Data.LoadFromEnumerable(LabelledAndUnlabelledRows());
        using var student = CnnTrainer.Distill(teacher, "lenet5", options, ml).Fit(teacher.MapLabelsToKeys(ml, "Label").Fit(data).Transform(data));

        Assert.AreEqual(wasTraining, teacherModel.training, "the teacher's mode is restored");
        foreach (var (name, tensor) in teacherModel.state_dict())
            Assert.IsTrue(BitIdentical(before[name], tensor), $"teacher entry {name} changed during distillation");
        using var start2 = SafeTensors.Read(studentWeights);
        var trained = student.Network.Model.state_dict();
        foreach (var (name, tensor) in start2)
        {
            using var diff = (trained[name].cpu() - tensor).abs().max();
            Assert.IsLessThan(1e-6, (double)diff.item<float>(), $"student entry {name} did not start from the given weights");
        }
        foreach (var t in before.Values) t.Dispose();
    }

    private static bool BitIdentical(TorchSharp.torch.Tensor a, TorchSharp.torch.Tensor b)
    {
        if (!a.shape.SequenceEqual(b.shape)) return false;
        using var equal = a.eq(b.cpu()).all();
        return equal.item<bool>();
    }

    private sealed class PredictedClassRow
    {
        public string PredictedClass { get; set; } = "";
    }

    private sealed class ImageOnlyRow
    {
        public byte[] Image { get; set; } = Array.Empty<byte>();
    }

    [TestMethod]
    public void AugmentedDistillationWithoutLabelColumnUsesEachModelsPreprocessingAndPseudoLabels()
    {
        var ml = new MLContext(seed: 3);
        var messages = new List<string>();
        ml.Log += (_, e) => { if (e.Source == "CnnDistillation") lock (messages) messages.Add(e.Message); };
        using var teacher = DistillationTeacher.FromTransformer(Teacher);
        var images = ml.Data.LoadFromEnumerable(LabelledAndUnlabelledRows().Select(r => new ImageOnlyRow { Image = r.Image }));
        foreach (bool pseudo in new[] { false, true })
        {
            var metrics = new List<DistillationEpochMetrics>();
            var options = StudentOptions(epochs: 2);
            options.Augment = true;      // teacher runs every batch on the same crops, through its own 1-channel 32 px preprocessing
            options.Student = new() { InChannels = 3, ImageSize = 28, DropRate = 0 }; // student: 3 channels at 28 px
            options.PseudoLabels = pseudo;
            options.EpochCompleted = metrics.Add;
            using var student = CnnTrainer.Distill(teacher, "lenet5", options, ml).Fit(images);
            Assert.AreEqual(2, metrics.Count);
            Assert.AreEqual(0L, metrics[0].LabelledImages);
            Assert.AreEqual(100L, metrics[0].UnlabelledImages);
            Assert.IsNull(metrics[0].StudentAccuracy, "no labels: no accuracy");
            Assert.IsTrue(metrics[^1].TeacherAgreement is >= 0 and <= 1);
            Assert.AreEqual(pseudo, metrics[0].HardLoss is not null, "a cross-entropy term exists exactly with pseudo-labels");
            Assert.AreEqual(28, student.Network.Preprocess.Height);
            Assert.AreEqual(3, student.Network.Preprocess.Channels);
            // The output key carries the teacher's class names.
            var predicted = student.GetOutputSchema(images.Schema)["PredictedLabel"];
            Assert.AreEqual(10UL, ((KeyDataViewType)predicted.Type).Count);
            VBuffer<ReadOnlyMemory<char>> names = default;
            predicted.GetKeyValues(ref names);
            CollectionAssert.AreEqual(FashionMnist.ClassNames.ToList(), names.DenseValues().Select(n => n.ToString()).ToList());
        }
        Assert.IsFalse(messages.Any(m => m.Contains("cached", StringComparison.Ordinal)), "with augmentation the teacher must see each augmented view");
    }

    [TestMethod]
    public void TeacherFromModelFileOrWeightsMatchesTheFittedClassifier()
    {
        var ml = new MLContext();
        using var folder = new TempDirectory();
        var (pipeline, train) = TeacherModel.Value;
        var withNames = pipeline.Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel").Fit(pipeline.Transform(train)));
        string modelPath = folder.File("teacher.zip");
        CnnPipelineFile.Save(ml, withNames, train.Schema, modelPath);
        string weightsPath = folder.File("teacher.safetensors");
        using (var weights = StateDict.FromModule(Teacher.Network.Model))
            SafeTensors.Write(weightsPath, weights);

        var images = FashionMnistFixture.Slice(train: false, perClass: 2).Samples;
        using var expected = Teacher.Network.Forward(images);
        using var fromFile = DistillationTeacher.FromModelFile(modelPath, ml);
        using var fromWeights = DistillationTeacher.FromWeights("resnet18", weightsPath, FashionMnist.ClassNames, imageSize: 32, cropPct: 1.0);
        foreach (var teacher in new[] { fromFile, fromWeights })
        {
            Assert.AreEqual(10, teacher.NumClasses, teacher.Description);
            Assert.AreEqual(1, teacher.InputChannels, teacher.Description);
            CollectionAssert.AreEqual(Teacher.ClassNames.ToList(), teacher.ClassNames.ToList(), teacher.Description);
            using var logits = teacher.Network.Forward(images);
            Assert.IsTrue(logits.allclose(expected, rtol: 1e-4, atol: 1e-5), $"{teacher.Description}: logits differ from the fitted teacher's");
        }

        // The student takes the teacher pipeline's place: same shape as a trained model file (MapValueToKey → CNN → MapKeyToValue).
        var data = fromFile.MapLabelsToKeys(ml).Fit(train).Transform(train);
        using var student = CnnTrainer.Distill(fromFile, "lenet5", StudentOptions(epochs: 1)).Fit(data);
        var studentPipeline = fromFile.WithStudent(student);
        var stages = ((IEnumerable<ITransformer>)studentPipeline).ToList();
        Assert.AreEqual(3, stages.Count);
        Assert.AreSame(student, stages[1]);
        var scored = studentPipeline.Transform(train);
        Assert.IsNotNull(scored.Schema.GetColumnOrNull("PredictedClass"));
        Assert.AreEqual(train.GetRowCount() ?? 50, ml.Data.CreateEnumerable<PredictedClassRow>(scored, false).Count());
    }

    [TestMethod]
    public void BadTeachersLabelsAndOptionsAreClearErrors()
    {
        var ml = new MLContext();
        using var folder = new TempDirectory();
        using var teacher = DistillationTeacher.FromTransformer(Teacher);
        var train = TeacherModel.Value.Train;

        // The student must have the teacher's class count.
        var forced = StudentOptions(1);
        forced.NumClasses = 5;
        var classes = Assert.ThrowsExactly<ArgumentException>(() => CnnTrainer.Distill(teacher, "lenet5", forced));
        StringAssert.Contains(classes.Message, "teacher");
        StringAssert.Contains(classes.Message, "10 classes");
        StringAssert.Contains(classes.Message, "NumClasses is 5");

        // Teachers that cannot load.
        var missing = Assert.ThrowsExactly<FileNotFoundException>(() => DistillationTeacher.FromModelFile(folder.File("nope.zip")));
        StringAssert.Contains(missing.Message, "nope.zip");
        string corrupt = folder.File("corrupt.zip");
        File.WriteAllBytes(corrupt, Enumerable.Range(0, 500).Select(i => (byte)(i * 37)).ToArray());
        var corruptError = Assert.ThrowsExactly<InvalidDataException>(() => DistillationTeacher.FromModelFile(corrupt));
        StringAssert.Contains(corruptError.Message, "cannot be loaded");
        string noClassifier = folder.File("mapper.zip");
        CnnPipelineFile.Save(ml, ml.Transforms.Conversion.MapValueToKey("Label").Fit(train), train.Schema, noClassifier);
        var noClassifierError = Assert.ThrowsExactly<InvalidDataException>(() => DistillationTeacher.FromModelFile(noClassifier));
        StringAssert.Contains(noClassifierError.Message, "no CNN classifier stage");
        string headless = folder.File("headless.safetensors");
        using (var body = StateDict.FromModule(Teacher.Network.Model))
        {
            body.Remove("fc.weight");
            body.Remove("fc.bias");
            SafeTensors.Write(headless, body);
        }
        var headlessError = Assert.ThrowsExactly<InvalidDataException>(() => DistillationTeacher.FromWeights("resnet18", headless));
        StringAssert.Contains(headlessError.Message, "no classifier weights 'fc.weight'");
        Assert.ThrowsExactly<FileNotFoundException>(() => DistillationTeacher.FromWeights("resnet18", folder.File("none.pth")));
        Assert.ThrowsExactly<InvalidDataException>(() => DistillationTeacher.FromWeights("resnet34", folder.File("corrupt.zip")));

        // Labels whose key count differs from the teacher's classes.
        var threeClasses = FashionMnistFixture.View(ml, train: true, perClass: 2, classes: 3);
        var keyedThree = ml.Transforms.Conversion.MapValueToKey("Label").Fit(threeClasses).Transform(threeClasses);
        var countError = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => CnnTrainer.Distill(teacher, "lenet5", StudentOptions(1)).Fit(keyedThree));
        StringAssert.Contains(countError.Message, "3 classes but the teacher");
        StringAssert.Contains(countError.Message, "MapLabelsToKeys");
        // Ten classes, but not in the teacher's order.
        var reversed = ml.Data.LoadFromEnumerable(Teacher.ClassNames.Reverse().Select(n => new PredictedClassRow { PredictedClass = n }));
        var keyedReversed = ml.Transforms.Conversion.MapValueToKey("Label", keyData: reversed).Fit(train).Transform(train);
        var orderError = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => CnnTrainer.Distill(teacher, "lenet5", StudentOptions(1)).Fit(keyedReversed));
        StringAssert.Contains(orderError.Message, "teacher's order");
        // A text label column (not mapped to keys).
        var textError = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => CnnTrainer.Distill(teacher, "lenet5", StudentOptions(1)).Fit(train));
        StringAssert.Contains(textError.Message, "MapLabelsToKeys");

        // Options and names.
        Assert.ThrowsExactly<ArgumentException>(() => CnnTrainer.Distill(teacher, "lenet6"));
        var hot = StudentOptions(1);
        hot.Temperature = 0;
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => CnnTrainer.Distill(teacher, "lenet5", hot)).Message, "Temperature");
        var heavy = StudentOptions(1);
        heavy.Alpha = 1.5;
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => CnnTrainer.Distill(teacher, "lenet5", heavy)).Message, "Alpha");
    }

    [TestMethod]
    [DoNotParallelize] // counts process-wide tensors and resident memory
    public void MemoryStaysFlatAcrossEpochs()
    {
        var ml = new MLContext();
        using var teacher = DistillationTeacher.FromTransformer(Teacher);
        var data = teacher.MapLabelsToKeys(ml).Fit(ml.Data.LoadFromEnumerable(LabelledAndUnlabelledRows()))
            .Transform(ml.Data.LoadFromEnumerable(LabelledAndUnlabelledRows()));
        var options = StudentOptions(epochs: 8);
        options.Augment = true; // the teacher forward runs every batch
        var probe = new EpochMemoryProbe();
        options.EpochCompleted = _ => probe.Sample();
        using var student = CnnTrainer.Distill(teacher, "lenet5", options).Fit(data);
        probe.AssertFlat();
    }
}
