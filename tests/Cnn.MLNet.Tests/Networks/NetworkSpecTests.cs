using System.IO.Compression;
using System.Text.Json;
using Cnn.Backbones.Models;
using Cnn.MLNet.Networks;
using Cnn.MLNet.Persistence;
using Cnn.MLNet.Scoring;
using Cnn.MLNet.Tests.Training;
using Cnn.Tests.Shared;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Cnn.MLNet.Tests.Networks;

/// <summary>One network spec builds the network everywhere and is stored whole in a model file.</summary>
[TestClass]
public sealed class NetworkSpecTests
{
    private static readonly ModelOptions Unusual = new()
    {
        InChannels = 1, ImageSize = 32, DropRate = 0.25, DropPathRate = 0.1, GlobalPool = "avg", ZeroInitResidual = true,
    };

    private static (TransformerChain<CnnClassifierTransformer> Model, IDataView Data, MLContext Ml) Train()
    {
        var ml = new MLContext(seed: 1);
        var raw = FashionMnistFixture.View(ml, train: true, perClass: 2, classes: 3);
        var options = new CnnTrainerOptions
        {
            Model = Unusual, Mean = [0.3f], Std = [0.4f], CropPct = 1.0, Epochs = 1, BatchSize = 6, Augment = false, Seed = 2,
            Precision = CnnPrecision.Float32, MemoryFormat = CnnMemoryFormat.Contiguous, InferenceEngine = CnnInferenceEngine.TorchSharp,
        };
        var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(CnnTrainer.ResNet18(options)).Fit(raw);
        return (model, raw, ml);
    }

    [TestMethod]
    public void EveryOptionRoundTripsThroughAModelFile()
    {
        var (model, data, ml) = Train();
        using var classifier = model.LastTransformer;
        var spec = classifier.Network.Spec;
        Assert.AreEqual("resnet18", spec.Architecture);
        Assert.AreEqual(3, spec.Model.NumClasses, "the class count comes from the label column");
        Assert.IsNull(spec.Model.WeightsPath);
        Assert.AreEqual(Unusual with { NumClasses = 3 }, spec.Model with { OutIndices = null });
        Assert.AreEqual(0.25, classifier.Network.Model.DropRate, "the options reached the backbone");
        CollectionAssert.AreEqual(new[] { 0.3f }, spec.Preprocess.Mean.ToArray());

        using var folder = new TempDirectory();
        string path = folder.File("model.zip");
        CnnPipelineFile.Save(ml, model, data.Schema, path);
        NetworkSpec stored;
        using (var archive = ZipFile.OpenRead(path))
            stored = NetworkFile.ReadSpec(archive, archive.Entries.First(e => e.Name == "network.json").FullName[..^"network.json".Length]);
        Assert.AreEqual(NetworkFile.Serialize(spec), NetworkFile.Serialize(stored), "the file stores the spec as it is");

        var loaded = CnnPipelineFile.Load(new MLContext(), path, out _);
        using var reloaded = CnnPipelineFile.Stages(loaded).OfType<CnnClassifierTransformer>().Single();
        Assert.AreEqual(NetworkFile.Serialize(spec), NetworkFile.Serialize(reloaded.Network.Spec));
        Assert.AreEqual(0.25, reloaded.Network.Model.DropRate);
        var before = CnnTrainerTests.ScoresOf(ml, model.Transform(data));
        var after = CnnTrainerTests.ScoresOf(ml, loaded.Transform(data));
        for (int i = 0; i < before.Count; i++) CollectionAssert.AreEqual(before[i], after[i], $"row {i}");
    }

    /// <summary>Every public option of <see cref="ModelOptions"/> is written to the file: a new option cannot be dropped silently.</summary>
    [TestMethod]
    public void TheStoredSpecHoldsEveryModelOption()
    {
        var spec = NetworkSpec.For("resnet18", new ModelOptions());
        using var json = JsonDocument.Parse(NetworkFile.Serialize(spec));
        var stored = json.RootElement.GetProperty("spec").GetProperty("model").EnumerateObject().Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var property in typeof(ModelOptions).GetProperties().Where(p => p.CanRead && p.GetMethod!.IsPublic))
            Assert.Contains(property.Name, stored, $"ModelOptions.{property.Name} is not stored");
        var preprocess = json.RootElement.GetProperty("spec").GetProperty("preprocess").EnumerateObject().Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var property in typeof(Cnn.MLNet.Imaging.PreprocessOptions).GetProperties().Where(p => p.CanWrite))
            Assert.Contains(property.Name, preprocess, $"PreprocessOptions.{property.Name} is not stored");
    }

    /// <summary>Model files written before the spec was stored whole (a flat <c>network.json</c>) load and score the same.</summary>
    [TestMethod]
    public void ModelFilesOfTheEarlierFormatStillLoad()
    {
        var (model, data, ml) = Train();
        using var folder = new TempDirectory();
        string path = folder.File("model.zip");
        CnnPipelineFile.Save(ml, model, data.Schema, path);
        var spec = model.LastTransformer.Network.Spec;
        using (var archive = ZipFile.Open(path, ZipArchiveMode.Update))
        {
            var entry = archive.Entries.First(e => e.Name == "network.json");
            string name = entry.FullName;
            entry.Delete();
            // The writer of the earlier versions: selected options, flat, camelCase.
            var legacy = new
            {
                architecture = spec.Architecture, numClasses = spec.Model.NumClasses, inChannels = spec.Model.InChannels,
                dropRate = model.LastTransformer.Network.Model.DropRate, auxLogits = (bool?)null, auxLossWeight = (double?)null, transformInput = (bool?)null,
                height = spec.Preprocess.Height, width = spec.Preprocess.Width, channels = spec.Preprocess.Channels,
                mean = spec.Preprocess.Mean, std = spec.Preprocess.Std, cropPct = spec.Preprocess.CropPct, interpolation = spec.Preprocess.Interpolation.ToString(),
            };
            using var writer = new StreamWriter(archive.CreateEntry(name).Open());
            writer.Write(JsonSerializer.Serialize(legacy));
        }
        var loaded = CnnPipelineFile.Load(new MLContext(), path, out _);
        var before = CnnTrainerTests.ScoresOf(ml, model.Transform(data));
        var after = CnnTrainerTests.ScoresOf(ml, loaded.Transform(data));
        for (int i = 0; i < before.Count; i++) CollectionAssert.AreEqual(before[i], after[i], $"row {i}");
        model.LastTransformer.Dispose();
    }

    /// <summary>
    /// A weights file written by <c>cnn import</c> records its block counts and preprocessing (ML.NET's featurizer: three blocks in
    /// layer4, no classifier, its own mean and std); a spec made with it, and the command line, take them from the file.
    /// </summary>
    [TestMethod]
    public void ImportedWeightsBringTheirBlockCountsAndPreprocessing()
    {
        using var dir = new TempDirectory();
        string path = dir.File("imported.safetensors");
        using (var model = ModelRegistry.Create("resnet18", new ModelOptions { NumClasses = 0, BlockCounts = [2, 2, 2, 3] }))
        using (var weights = Cnn.Backbones.Weights.StateDict.FromModule(model))
            Cnn.Backbones.Weights.SafeTensors.Write(path, weights, new Dictionary<string, string>
            {
                ["cnn.block_counts"] = "2,2,2,3", ["cnn.mean"] = "0.48,0.45,0.4", ["cnn.std"] = "0.00392156862745098,0.00392156862745098,0.00392156862745098",
            });
        var spec = NetworkSpec.For("resnet18", new ModelOptions { NumClasses = 0, WeightsPath = path });
        CollectionAssert.AreEqual(new[] { 2, 2, 2, 3 }, spec.Model.BlockCounts!.ToArray());
        CollectionAssert.AreEqual(new[] { 0.48f, 0.45f, 0.4f }, spec.Preprocess.Mean.ToArray());
        Assert.AreEqual(1 / 255f, spec.Preprocess.Std[0], 1e-9f);
        var given = NetworkSpec.For("resnet18", new ModelOptions { NumClasses = 0, WeightsPath = path }, mean: [0.5f, 0.5f, 0.5f]);
        CollectionAssert.AreEqual(new[] { 0.5f, 0.5f, 0.5f }, given.Preprocess.Mean.ToArray(), "given values win");

        string png = dir.File("x.png");
        File.WriteAllBytes(png, Cnn.MLNet.Imaging.ImageEncoder.EncodePng(new byte[40 * 40 * 3], 40, 40, 3));
        var features = Cli.CliHost.JsonLines(Cli.CliHost.Succeed("features", "-m", "resnet18", "-w", path, "--image-size", "64", "--json", png)).Single();
        Assert.AreEqual(512, Cli.CliHost.Floats(features.GetProperty("features")).Length);
    }

    [TestMethod]
    public void BadSpecsAreRefusedWithTheOptionNamed()
    {
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => NetworkSpec.For("resnet18", new ModelOptions { InChannels = 2 })).Message, "InChannels");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => NetworkSpec.For("resnet18", new ModelOptions(), mean: [0.5f])).Message, "Mean");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => NetworkSpec.For("resnet1", new ModelOptions())).Message, "resnet18");
        StringAssert.Contains(Assert.ThrowsExactly<FileNotFoundException>(() => NetworkSpec.For("resnet18", new ModelOptions { WeightsPath = "/nowhere/w.pth" })).Message, "/nowhere/w.pth");
        var spec = NetworkSpec.For("lenet5", new ModelOptions { NumClasses = 10, InChannels = 1 });
        Assert.AreEqual(32, spec.Preprocess.Height, "the pretrained configuration's input size");
        Assert.AreEqual(1, spec.Preprocess.Mean.Count, "one grey channel");
        Assert.AreEqual(28, NetworkSpec.For("lenet5", new ModelOptions { InChannels = 1, ImageSize = 28 }).Preprocess.Width);
    }
}
