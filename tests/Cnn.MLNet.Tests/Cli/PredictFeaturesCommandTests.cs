using System.Text.Json;
using Cnn.Backbones.Models;
using Cnn.MLNet.Imaging;
using Cnn.Tests.Shared;
using static TorchSharp.torch;

namespace Cnn.MLNet.Tests.Cli;

/// <summary>
/// <c>cnn predict --model</c> and <c>cnn features</c> against torchvision: a seeded resnet18 saved by Python, images preprocessed by
/// torchvision's <c>Resize(256) → CenterCrop(224) → ToTensor → Normalize</c>, logits and pooled features computed by Python.
/// </summary>
[TestClass]
public sealed class PredictFeaturesCommandTests
{
    private const string MakeReference = """
        import json, os, sys
        import numpy as np
        import torch, torchvision
        from PIL import Image
        from torchvision import transforms as T
        out = sys.argv[1]
        torch.manual_seed(0)
        m = torchvision.models.resnet18().eval()
        torch.save(m.state_dict(), os.path.join(out, "resnet18.pth"))
        rng = np.random.default_rng(0)
        def make(name, h, w):
            yy, xx = np.mgrid[0:h, 0:w]
            img = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 127 // (w + h)], -1) + rng.integers(-60, 60, (h, w, 3))
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(os.path.join(out, name))
        make("photo.png", 240, 300)
        make("tall.png", 310, 180)
        tf = T.Compose([T.Resize(int(224 / 0.875)), T.CenterCrop(224), T.ToTensor(),
                        T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
        pooled = {}
        m.fc.register_forward_hook(lambda mod, inp, o: pooled.__setitem__("x", inp[0]))
        result = {}
        for name in ["photo.png", "tall.png"]:
            x = tf(Image.open(os.path.join(out, name)).convert("RGB")).unsqueeze(0)
            with torch.no_grad():
                logits = m(x)[0]
            result[name] = {"logits": logits.tolist(), "features": pooled["x"][0].tolist()}
        print(json.dumps(result))
        """;

    private static TempDirectory? _dir;
    private static JsonDocument? _reference;

    [ClassInitialize]
    public static void MakeFixture(TestContext _)
    {
        _dir = new TempDirectory();
        _reference = JsonDocument.Parse(ReferencePython.Run(MakeReference, _dir.Path));
    }

    [ClassCleanup]
    public static void RemoveFixture()
    {
        _reference?.Dispose();
        _dir?.Dispose();
    }

    private static string Weights => _dir!.File("resnet18.pth");

    private static float[] Reference(string image, string what) => CliHost.Floats(_reference!.RootElement.GetProperty(image).GetProperty(what));

    [TestMethod]
    public void JsonLogitsMatchTorchvisionAndTopIsSortedSoftmax()
    {
        string output = CliHost.Succeed("predict", "--model", "resnet18", "--weights", Weights, "--json", _dir!.File("photo.png"), _dir.File("tall.png"));
        var lines = CliHost.JsonLines(output);
        Assert.AreEqual(2, lines.Count, output);
        foreach (var (line, name) in lines.Zip(new[] { "photo.png", "tall.png" }))
        {
            Assert.AreEqual(_dir.File(name), line.GetProperty("file").GetString());
            var expected = Reference(name, "logits");
            var logits = CliHost.Floats(line.GetProperty("logits"));
            CliHost.AssertClose(expected, logits, 1e-4, name + " logits");

            var top = line.GetProperty("top").EnumerateArray().ToList();
            Assert.AreEqual(5, top.Count, "default --top is 5");
            var expectedOrder = Enumerable.Range(0, expected.Length).OrderByDescending(i => expected[i]).Take(5).ToArray();
            CollectionAssert.AreEqual(expectedOrder, top.Select(t => t.GetProperty("index").GetInt32()).ToArray(), name);
            double max = logits.Max(), sum = logits.Sum(v => Math.Exp(v - max));
            foreach (var entry in top)
            {
                double probability = Math.Exp(logits[entry.GetProperty("index").GetInt32()] - max) / sum;
                Assert.AreEqual(probability, entry.GetProperty("probability").GetDouble(), 1e-6);
                Assert.AreEqual(JsonValueKind.Null, entry.GetProperty("label").ValueKind, "no --labels: no names");
            }
        }
    }

    [TestMethod]
    public void TopAndLabelsShapeTheTextOutput()
    {
        string labels = _dir!.File("imagenet.txt");
        File.WriteAllLines(labels, Enumerable.Range(0, 1000).Select(i => $"name-{i}"));
        string output = CliHost.Succeed("predict", "--model", "resnet18", "--weights", Weights, "--labels", labels, "--top", "3", _dir.File("photo.png"));
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToList();
        Assert.AreEqual(4, lines.Count, output);
        Assert.AreEqual(_dir.File("photo.png"), lines[0]);
        var expected = Reference("photo.png", "logits");
        var order = Enumerable.Range(0, expected.Length).OrderByDescending(i => expected[i]).Take(3).ToArray();
        var shown = lines.Skip(1).Select(l => l.Trim().Split("  ", 2)).ToList();
        for (int k = 0; k < 3; k++)
            Assert.AreEqual($"name-{order[k]} ({order[k]})", shown[k][1]);
        var probabilities = shown.Select(s => double.Parse(s[0], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        CollectionAssert.AreEqual(probabilities.OrderByDescending(p => p).ToList(), probabilities, "highest first");
    }

    [TestMethod]
    public void CropPctOneOnAnImageAtInputSizeIsTheIdentity()
    {
        var random = new Random(3);
        var pixels = new byte[224 * 224 * 3];
        random.NextBytes(pixels);
        string image = _dir!.File("exact224.png");
        File.WriteAllBytes(image, ImageEncoder.EncodePng(pixels, 224, 224, 3));
        var line = CliHost.JsonLines(CliHost.Succeed("predict", "--model", "resnet18", "--weights", Weights, "--crop-pct", "1", "--engine", "torch", "--json", image)).Single();
        var logits = CliHost.Floats(line.GetProperty("logits"));

        // The same pixels, normalised by hand (ToTensor + Normalize in float32), straight into the model.
        float[] mean = [0.485f, 0.456f, 0.406f], std = [0.229f, 0.224f, 0.225f];
        var input = new float[3 * 224 * 224];
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 224 * 224; p++)
                input[c * 224 * 224 + p] = ((float)pixels[p * 3 + c] / 255f - mean[c]) / std[c];
        using var model = ModelRegistry.Create("resnet18");
        model.LoadWeights(Weights);
        model.eval();
        model.FoldBatchNorm(); // as the command runs it
        using var _ = no_grad();
        using var x = tensor(input, new long[] { 1, 3, 224, 224 });
        using var direct = model.call(x);
        var expected = direct.data<float>().ToArray();
        CollectionAssert.AreEqual(expected, logits, "no resampling may happen: the logits must be identical");
    }

    /// <summary><c>--engine onnxruntime</c>: the network's own ONNX export in ONNX Runtime gives torchvision's logits and features.</summary>
    [TestMethod]
    public void OnnxRuntimeEngineGivesTorchvisionsLogitsAndFeatures()
    {
        string[] images = [_dir!.File("photo.png"), _dir.File("tall.png")];
        var logits = CliHost.JsonLines(CliHost.Succeed(["predict", "--model", "resnet18", "--weights", Weights, "--engine", "onnxruntime", "--json", .. images]));
        var features = CliHost.JsonLines(CliHost.Succeed(["features", "--model", "resnet18", "--weights", Weights, "--engine", "onnxruntime", "--json", .. images]));
        foreach (var (i, name) in new[] { (0, "photo.png"), (1, "tall.png") })
        {
            CliHost.AssertClose(Reference(name, "logits"), CliHost.Floats(logits[i].GetProperty("logits")), 1e-4, name + " logits (ONNX Runtime)");
            CliHost.AssertClose(Reference(name, "features"), CliHost.Floats(features[i].GetProperty("features")), 1e-4, name + " features (ONNX Runtime)");
        }
        StringAssert.Contains(CliHost.FailOneLine(2, "predict", "--model", "resnet18", "--engine", "tensorrt", images[0]), "--engine must be auto, torch or onnxruntime");
        string mixed = CliHost.FailOneLine(2, "features", "--model", "resnet18", "--weights", Weights, "--engine", "onnxruntime", "--precision", "bfloat16", images[0]);
        StringAssert.Contains(mixed, "float32");
        Assert.IsFalse(mixed.Contains("(Parameter", StringComparison.Ordinal), mixed);
    }

    /// <summary>
    /// A folder runs batched, batch k + 1 decoded while batch k runs: the rows come out in the folder's path order with each
    /// image's own logits (against one image per pass), a last partial batch included.
    /// </summary>
    [TestMethod]
    public void AFolderIsPredictedInBatchesInPathOrder()
    {
        using var folder = new TempDirectory();
        var random = new Random(7);
        for (int i = 0; i < 7; i++)
        {
            int width = 48 + 8 * i, height = 40;
            var pixels = new byte[width * height * 3];
            random.NextBytes(pixels);
            File.WriteAllBytes(folder.File($"image{6 - i}.png"), Cnn.MLNet.Imaging.ImageEncoder.EncodePng(pixels, width, height, 3));
        }
        string[] Run(int batch) => CliHost.Succeed("predict", "--model", "resnet18", "--weights", Weights, "--engine", "torch", "--image-size", "64",
            "--batch-size", batch.ToString(System.Globalization.CultureInfo.InvariantCulture), "--json", folder.Path).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var batched = CliHost.JsonLines(string.Join('\n', Run(3)));
        var single = CliHost.JsonLines(string.Join('\n', Run(1)));
        Assert.AreEqual(7, batched.Count);
        for (int i = 0; i < 7; i++)
        {
            Assert.AreEqual(folder.File($"image{i}.png"), batched[i].GetProperty("file").GetString(), "ordinal path order");
            Assert.AreEqual(single[i].GetProperty("file").GetString(), batched[i].GetProperty("file").GetString());
            CliHost.AssertClose(CliHost.Floats(single[i].GetProperty("logits")), CliHost.Floats(batched[i].GetProperty("logits")), 1e-5, $"row {i}");
        }
    }

    [TestMethod]
    public void FeaturesArePooledPreLogitsOfTheModelDimension()
    {
        var json = CliHost.JsonLines(CliHost.Succeed("features", "--model", "resnet18", "--weights", Weights, "--json", _dir!.File("photo.png"), _dir.File("tall.png")));
        Assert.AreEqual(2, json.Count);
        int dimension = ModelRegistry.Create("resnet18").NumFeatures;
        Assert.AreEqual(512, dimension);
        foreach (var (line, name) in json.Zip(new[] { "photo.png", "tall.png" }))
        {
            var features = CliHost.Floats(line.GetProperty("features"));
            Assert.AreEqual(dimension, features.Length);
            CliHost.AssertClose(Reference(name, "features"), features, 1e-4, name + " features");
        }

        string text = CliHost.Succeed("features", "--model", "resnet18", "--weights", Weights, _dir.File("photo.png"));
        StringAssert.StartsWith(text, _dir.File("photo.png") + ": [");
        StringAssert.Contains(text, "(dim 512)");
    }

    [TestMethod]
    public void FailuresAreOneLine()
    {
        string photo = _dir!.File("photo.png");
        StringAssert.Contains(CliHost.FailOneLine(2, "predict", "--model", "resnet5O", photo), "did you mean resnet50");

        string missing = _dir.File("missing.png");
        StringAssert.Contains(CliHost.FailOneLine(1, "predict", "--model", "resnet18", missing), missing);

        string garbage = _dir.File("garbage.png");
        File.WriteAllText(garbage, "this is not an image");
        var line = CliHost.FailOneLine(1, "predict", "--model", "resnet18", garbage);
        StringAssert.Contains(line, garbage);
        StringAssert.Contains(line, "not a supported image format");

        line = CliHost.FailOneLine(1, "predict", "--model", "resnet34", "--weights", Weights, photo);
        StringAssert.Contains(line, "do not fit resnet34");

        line = CliHost.FailOneLine(1, "predict", "--model", "resnet18", "--weights", Weights, "--num-classes", "10", photo);
        StringAssert.Contains(line, "1000 classes but --num-classes is 10");

        string labels = _dir.File("three.txt");
        File.WriteAllLines(labels, ["a", "b", "c"]);
        line = CliHost.FailOneLine(1, "predict", "--model", "resnet18", "--weights", Weights, "--labels", labels, photo);
        StringAssert.Contains(line, "has 3 names but the model has 1000 classes");

        line = CliHost.FailOneLine(1, "features", "--model", "resnet18", "--weights", _dir.File("nope.pth"), photo);
        StringAssert.Contains(line, "nope.pth");
    }

    [TestMethod]
    public void UsageErrors()
    {
        string photo = _dir!.File("photo.png");
        StringAssert.Contains(CliHost.FailOneLine(2, "predict", photo), "--model");
        StringAssert.Contains(CliHost.FailOneLine(2, "predict", "--model", "resnet18", "--model-file", "m.zip", photo), "either");
        StringAssert.Contains(CliHost.FailOneLine(2, "predict", "--model", "resnet18"), "image");
        StringAssert.Contains(CliHost.FailOneLine(2, "predict", "--model", "resnet18", "--top", "0", photo), "--top");
        StringAssert.Contains(CliHost.FailOneLine(2, "features", photo), "--model");
        var (exit, output, _) = CliHost.Run("predict", "--help");
        Assert.AreEqual(0, exit);
        StringAssert.StartsWith(output, "usage: cnn predict");
    }

    /// <summary>
    /// A fine-tuned 10-class weight file: the class count comes from the file's classifier (or <c>--num-classes</c>), and
    /// <c>--labels</c> names the classes in the JSON output too.
    /// </summary>
    [TestMethod]
    public void TenClassWeightsGiveTenLabelledClassesInJson()
    {
        string weights = _dir!.File("resnet18-10.safetensors");
        using (var model = ModelRegistry.Create("resnet18", new ModelOptions { NumClasses = 10 }))
        using (var dict = Cnn.Backbones.Weights.StateDict.FromModule(model))
            Cnn.Backbones.Weights.SafeTensors.Write(weights, dict);
        string labels = _dir.File("ten.txt");
        File.WriteAllLines(labels, Enumerable.Range(0, 10).Select(i => $"class-{i}"));
        string photo = _dir.File("photo.png");
        foreach (var classOption in new[] { Array.Empty<string>(), new[] { "--num-classes", "10" } })
        {
            string output = CliHost.Succeed([.. new[] { "predict", "--model", "resnet18", "--weights", weights }, .. classOption,
                "--labels", labels, "--top", "3", "--json", photo]);
            var line = CliHost.JsonLines(output).Single();
            var logits = CliHost.Floats(line.GetProperty("logits"));
            Assert.HasCount(10, logits);
            var top = line.GetProperty("top").EnumerateArray().ToList();
            Assert.HasCount(3, top);
            int best = Array.IndexOf(logits, logits.Max());
            Assert.AreEqual(best, top[0].GetProperty("index").GetInt32());
            Assert.AreEqual($"class-{best}", top[0].GetProperty("label").GetString());
            Assert.IsTrue(top.All(t => t.GetProperty("label").GetString() == $"class-{t.GetProperty("index").GetInt32()}"));
        }
    }
}
