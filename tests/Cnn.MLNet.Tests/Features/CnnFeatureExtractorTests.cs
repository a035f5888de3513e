using System.Text.Json;
using Cnn.MLNet.Features;
using Cnn.MLNet.Persistence;
using Cnn.MLNet.Tests.Training;
using Cnn.MLNet;
using Cnn.Tests.Shared;
using Microsoft.ML.Data;
using Microsoft.ML;

namespace Cnn.MLNet.Tests.Features;

[TestClass]
public sealed class CnnFeatureExtractorTests
{
    private sealed class PathRow
    {
        public string ImagePath { get; set; } = "";
    }

    /// <remarks>ONNX Runtime runs the network's own export (pooled features only: stage maps come from TorchSharp).</remarks>
    [TestMethod]
    [DataRow(CnnInferenceEngine.TorchSharp)]
    [DataRow(CnnInferenceEngine.OnnxRuntime)]
    public void PooledFeaturesAndStageMapsMatchTorchvision(CnnInferenceEngine engine)
    {
        using var folder = new TempDirectory();
        string output = ReferencePython.Run("""
            import sys, json, torch, torchvision, numpy as np
            from PIL import Image
            import torchvision.transforms as T
            folder = sys.argv[1]
            torch.manual_seed(0)
            m = torchvision.models.resnet18().eval()
            for mod in m.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.running_mean.uniform_(-0.2, 0.2); mod.running_var.uniform_(0.5, 1.5)
            torch.save(m.state_dict(), folder + "/w.pth")
            rng = np.random.default_rng(3)
            paths = []
            for i, size in enumerate([(50, 40), (64, 64), (90, 70)]):
                p = f"{folder}/img{i}.png"
                Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(p)
                paths.append(p)
            tf = T.Compose([T.Resize(73), T.CenterCrop(64), T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
            x = torch.stack([tf(Image.open(p).convert("RGB")) for p in paths])
            with torch.no_grad():
                y = m.maxpool(m.relu(m.bn1(m.conv1(x))))
                l3 = m.layer3(m.layer2(m.layer1(y)))
                pooled = torch.flatten(m.avgpool(m.layer4(l3)), 1)
            print(json.dumps({"paths": paths, "pooled": pooled.tolist(), "layer3": l3.flatten(1).tolist()}))
            """, folder.Path);
        using var reference = JsonDocument.Parse(output);
        var paths = reference.RootElement.GetProperty("paths").EnumerateArray().Select(p => p.GetString()!).ToArray();
        var ml = new MLContext();
        var data = ml.Data.LoadFromEnumerable(paths.Select(p => new PathRow { ImagePath = p }));
        var extractor = ml.Transforms.ExtractCnnFeatures(new CnnFeatureOptions
        {
            Architecture = "resnet18", Model = new() { WeightsPath = folder.File("w.pth"), ImageSize = 64 }, ImageColumnName = "ImagePath", CropPct = 0.875,
            StageIndices = engine == CnnInferenceEngine.TorchSharp ? new[] { 3 } : null, BatchSize = 2, // two batches: checks the read-ahead across batch borders
            Engine = engine,
        });
        using var transformer = extractor.Fit(data);
        var transformed = transformer.Transform(data);
        Assert.AreEqual(512, ((VectorDataViewType)transformed.Schema["Features"].Type).Size);
        Compare(transformed, "Features", reference.RootElement.GetProperty("pooled"));
        if (engine == CnnInferenceEngine.TorchSharp) Compare(transformed, "Features.stage3", reference.RootElement.GetProperty("layer3"));
    }

    /// <summary>
    /// Families whose features are more than the last stage's map: MobileNetV2 (the final 1×1 convolution after the last stage)
    /// and ViT (<c>encoder.ln</c>, class-token pooling, token stages). Pooled features and one stage, against torchvision's
    /// classifier input and the stage module's output, captured by hooks.
    /// </summary>
    [TestMethod]
    [DataRow("mobilenet_v2", 64, 2)]
    [DataRow("vit_b_32", 224, 5)]
    public void PooledFeaturesAndStagesOfModelsWithAFeatureTailMatchTorchvision(string architecture, int size, int stage)
    {
        using var folder = new TempDirectory();
        string stageModule, classifier;
        using (var probe = Cnn.Backbones.Models.ModelRegistry.Create(architecture))
            (stageModule, classifier) = (probe.FeatureInfo[stage].ModuleName, probe.PretrainedConfig.Classifier);
        string output = ReferencePython.Run("""
            import sys, json, torch, torchvision, numpy as np
            from PIL import Image
            import torchvision.transforms as T
            folder, name, size, stage_module, classifier = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
            torch.manual_seed(0)
            m = getattr(torchvision.models, name)().eval()
            with torch.no_grad():
                for mod in m.modules():
                    if isinstance(mod, torch.nn.BatchNorm2d):
                        mod.running_mean.uniform_(-0.2, 0.2); mod.running_var.uniform_(0.5, 1.5)
                    elif isinstance(mod, torch.nn.LayerNorm):
                        mod.weight.uniform_(0.5, 1.5); mod.bias.uniform_(-0.2, 0.2)
            torch.save(m.state_dict(), folder + "/w.pth")
            rng = np.random.default_rng(3)
            paths = []
            for i, wh in enumerate([(size - 10, size - 20), (size, size), (size + 30, size + 10)]):
                p = f"{folder}/img{i}.png"
                Image.fromarray(rng.integers(0, 256, (wh[1], wh[0], 3), dtype=np.uint8)).save(p)
                paths.append(p)
            tf = T.Compose([T.Resize(int(size / 0.875)), T.CenterCrop(size), T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
            x = torch.stack([tf(Image.open(p).convert("RGB")) for p in paths])
            modules, captured = dict(m.named_modules()), {}
            modules[stage_module].register_forward_hook(lambda mod, i, o: captured.__setitem__("stage", o))
            modules[classifier].register_forward_pre_hook(lambda mod, i: captured.__setitem__("pooled", i[0]))
            with torch.no_grad():
                m(x)
            print(json.dumps({"paths": paths, "pooled": captured["pooled"].tolist(), "stage": captured["stage"].flatten(1).tolist()}))
            """, folder.Path, architecture, size.ToString(System.Globalization.CultureInfo.InvariantCulture), stageModule, classifier);
        using var reference = JsonDocument.Parse(output);
        var paths = reference.RootElement.GetProperty("paths").EnumerateArray().Select(p => p.GetString()!).ToArray();
        var ml = new MLContext();
        var data = ml.Data.LoadFromEnumerable(paths.Select(p => new PathRow { ImagePath = p }));
        using var transformer = ml.Transforms.ExtractCnnFeatures(new CnnFeatureOptions
        {
            Architecture = architecture, Model = new() { WeightsPath = folder.File("w.pth"), ImageSize = size }, ImageColumnName = "ImagePath", CropPct = 0.875,
            StageIndices = new[] { stage }, BatchSize = 2,
        }).Fit(data);
        var transformed = transformer.Transform(data);
        Compare(transformed, "Features", reference.RootElement.GetProperty("pooled"));
        Compare(transformed, $"Features.stage{stage}", reference.RootElement.GetProperty("stage"));
    }

    private static void Compare(IDataView data, string column, JsonElement expectedRows)
    {
        var expected = expectedRows.EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToList();
        using var cursor = data.GetRowCursor(new[] { data.Schema[column] });
        var getter = cursor.GetGetter<VBuffer<float>>(data.Schema[column]);
        VBuffer<float> value = default;
        int row = 0;
        while (cursor.MoveNext())
        {
            getter(ref value);
            var actual = value.DenseValues().ToArray();
            Assert.AreEqual(expected[row].Length, actual.Length, $"{column} row {row} length");
            float scale = expected[row].Max(Math.Abs);
            float worst = expected[row].Zip(actual, (e, a) => Math.Abs(e - a)).Max();
            Assert.IsTrue(worst <= 1e-4f * scale, $"{column} row {row}: max|diff| {worst} > 1e-4 x {scale}");
            row++;
        }
        Assert.AreEqual(expected.Count, row);
    }

    [TestMethod]
    public void FeaturesFeedAnMLNetTrainerAndTheMixedPipelineSavesAndLoads()
    {
        var ml = new MLContext(seed: 3);
        var train = FashionMnistFixture.View(ml, train: true, perClass: 30, classes: 4);
        var test = FashionMnistFixture.View(ml, train: false, perClass: 15, classes: 4);
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.ExtractCnnFeatures(new CnnFeatureOptions { Model = new() { InChannels = 1, ImageSize = 32 }, CropPct = 1.0, Engine = CnnInferenceEngine.TorchSharp }))
            .Append(ml.Transforms.NormalizeMinMax("Features"))
            .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy("Label", "Features", maximumNumberOfIterations: 30))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));
        var model = pipeline.Fit(train);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
        // Random convolutional features of a 4-class Fashion-MNIST slice are linearly separable well above chance (25%).
        Assert.IsTrue(metrics.MicroAccuracy > 0.45, $"accuracy {metrics.MicroAccuracy:P1}");

        using var folder = new TempDirectory();
        CnnPipelineFile.Save(ml, model, train.Schema, folder.File("features.zip"));
        var loaded = CnnPipelineFile.Load(new MLContext(), folder.File("features.zip"), out _);
        var before = CnnTrainerTests.ScoresOf(ml, model.Transform(test));
        var after = CnnTrainerTests.ScoresOf(ml, loaded.Transform(test));
        for (int i = 0; i < before.Count; i++)
            CollectionAssert.AreEqual(before[i], after[i], $"row {i}");
    }

    [TestMethod]
    public void BadStageIndexAndMissingColumnAreClearErrors()
    {
        var ml = new MLContext();
        var data = FashionMnistFixture.View(ml, train: true, perClass: 1, classes: 2);
        var badStage = ml.Transforms.ExtractCnnFeatures(new CnnFeatureOptions { Model = new() { InChannels = 1, ImageSize = 32 }, StageIndices = new[] { 9 } });
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => badStage.Fit(data));
        StringAssert.Contains(error.Message, "layer4");
        var missing = ml.Transforms.ExtractCnnFeatures(imageColumnName: "Picture");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => missing.Fit(data)).Message, "'Picture' is missing");

        var onnxStages = new CnnFeatureOptions { Engine = CnnInferenceEngine.OnnxRuntime, StageIndices = new[] { 2 } };
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(onnxStages.Validate).Message, "Engine = TorchSharp");
        var onnxBFloat16 = new CnnFeatureOptions { Engine = CnnInferenceEngine.OnnxRuntime, Precision = CnnPrecision.BFloat16 };
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(onnxBFloat16.Validate).Message, "CnnFeatureOptions.Engine = OnnxRuntime computes in float32");
    }
}
