using System.Globalization;
using Cnn.Cli.Inference;
using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using Cnn.MLNet.Tests.Cli;
using Cnn.Tests.Shared;
using Google.Protobuf;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Cnn.MLNet.Tests.Export;

/// <summary>
/// <c>cnn export</c> of a model trained by <c>cnn train</c> (LeNet-5 at Fashion-MNIST's 28×28, so no resizing differs), run by
/// ML.NET's own <c>LoadImages → ResizeImages (to the size they have) → ExtractPixels → ApplyOnnxModel</c>: the same predicted class as our transformer on every test
/// image (the 10,000 of Fashion-MNIST's test split, or the embedded subset where the data set is not installed) and probabilities within 1e-4; the <c>--model --weights</c> form; the command's errors.
/// </summary>
[TestClass]
public sealed class OnnxExportRoundTripTests
{
    private static TempDirectory? _dir;

    private static string Model => _dir!.File("lenet5.zip");

    [ClassInitialize]
    public static void Train(TestContext _)
    {
        _dir = new TempDirectory();
        CliHost.Succeed("train", "--precision", "float32", "--memory-format", "contiguous", "-m", "lenet5", "--limit", "300", "-e", "1", "-b", "32", "--image-size", "28", "-q", "-o", Model);
    }

    [ClassCleanup]
    public static void Remove() => _dir?.Dispose();

    [TestMethod]
    public void ExportedModel_InAnMlNetPipeline_PredictsAsOurTransformer()
    {
        string onnx = _dir!.File("lenet5.onnx");
        string text = CliHost.Succeed("export", "--model-file", Model, "--output", onnx, "--normalize-inside", "--probabilities");
        StringAssert.Contains(text, "input 'input' [batch, 1, 28, 28] float32 (0-255 pixels, normalised in the graph); output 'probabilities' [batch, 10]");
        StringAssert.Contains(text, "verified: ONNX Runtime agrees with the network on a random 2x1x28x28 batch");
        StringAssert.Contains(text, $"wrote {onnx}");

        var (paths, encoded) = WriteTestImages(_dir.File("images"));
        float[][] ours;
        using (var pipeline = PipelineModel.Load(Model))
            ours = PipelineModel.Scores(pipeline.Model.Transform(pipeline.ViewOf(paths, encoded)));

        var ml = new MLContext(seed: 0);
        var images = ml.Data.LoadFromEnumerable(paths.Select(p => new ImagePath { Path = p }));
        var onnxPipeline = ml.Transforms.LoadImages("Image", imageFolder: null, inputColumnName: nameof(ImagePath.Path))
            .Append(ml.Transforms.ResizeImages("Image", 28, 28, "Image")) // ExtractPixels needs a known size; the images have it already
            .Append(ml.Transforms.ExtractPixels("input", "Image", colorsToExtract: ImagePixelExtractingEstimator.ColorBits.Red))
            .Append(ml.Transforms.ApplyOnnxModel(["probabilities"], ["input"], onnx));
        var scored = onnxPipeline.Fit(images).Transform(images);
        var theirs = ml.Data.CreateEnumerable<Probabilities>(scored, reuseRowObject: false).Select(r => r.Values).ToArray();

        Assert.AreEqual(paths.Count, theirs.Length);
        double worst = 0;
        for (int i = 0; i < paths.Count; i++)
        {
            Assert.AreEqual(ArgMax(ours[i]), ArgMax(theirs[i]), $"{paths[i]}: predicted class");
            worst = Math.Max(worst, ours[i].Zip(theirs[i], (a, b) => Math.Abs(a - b)).Max());
        }
        Assert.IsTrue(worst <= 1e-4, $"largest |our score − ApplyOnnxModel's| = {worst}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{paths.Count} test images: same class everywhere, largest score difference {worst:G3}"));
    }

    [TestMethod]
    public void ModelAndWeightsForm_ExportsTheWeightsThatCnnImportReadBack()
    {
        string first = _dir!.File("first.onnx"), weights = _dir.File("first.safetensors"), second = _dir.File("second.onnx");
        CliHost.Succeed("export", "--model-file", Model, "-o", first);
        CliHost.Succeed("import", first, "--model", "lenet5", "-o", weights);
        string text = CliHost.Succeed("export", "--model", "lenet5", "--weights", weights, "--image-size", "28", "-o", second);
        StringAssert.Contains(text, "output 'logits' [batch, 10]");

        var a = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(first)).Graph.Initializer.ToDictionary(t => t.Name, t => t.RawData);
        var b = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(second)).Graph.Initializer.ToDictionary(t => t.Name, t => t.RawData);
        var weightsOf = (Dictionary<string, ByteString> d) => d.Where(e => e.Key.Contains('.', StringComparison.Ordinal)).ToDictionary(e => e.Key, e => e.Value);
        var (wa, wb) = (weightsOf(a), weightsOf(b));
        Assert.AreEqual(10, wa.Count, string.Join(", ", wa.Keys)); // conv1, conv2, fc1..fc3: weight and bias each
        CollectionAssert.AreEquivalent(wa.Keys.ToList(), wb.Keys.ToList());
        foreach (var (name, data) in wa) Assert.AreEqual(data, wb[name], $"{name} differs after export, import and export");
    }

    [TestMethod]
    public void Errors_AreOneLineAndSayWhatToDo()
    {
        StringAssert.Contains(CliHost.FailOneLine(2, "export", "--model", "resnt18", "-o", _dir!.File("x.onnx")), "unknown model 'resnt18'; did you mean resnet18?");
        StringAssert.Contains(CliHost.FailOneLine(2, "export", "-o", _dir.File("x.onnx")), "give either --model <name> or --model-file <model.zip>");
        StringAssert.Contains(CliHost.FailOneLine(2, "export", "--model-file", Model, "--weights", "w.safetensors"), "--weights, --num-classes and --labels apply to --model only");
        StringAssert.Contains(CliHost.FailOneLine(1, "export", "--model-file", _dir.File("missing.zip")), "model file not found: " + _dir.File("missing.zip"));
        StringAssert.Contains(CliHost.FailOneLine(1, "export", "--model", "resnet18", "--weights", _dir.File("missing.pth")), "--weights: file not found");
        StringAssert.Contains(CliHost.FailOneLine(1, "export", "--model-file", Model, "--dynamic-size", "-o", _dir.File("d.onnx")),
            "lenet5 cannot be exported with a dynamic input size: its fully-connected layers take a 5×5 map");
        Assert.IsFalse(File.Exists(_dir.File("d.onnx")), "nothing is written when the export fails");
        StringAssert.Contains(CliHost.FailOneLine(2, "export", "--model-file", Model, "-o", _dir.Path), "is a folder");
    }

    private static (IReadOnlyList<string> Paths, IReadOnlyList<byte[]> Encoded) WriteTestImages(string folder)
    {
        Directory.CreateDirectory(folder);
        var test = FashionMnist.Load(FashionMnistSplit.Test);
        var paths = new List<string>();
        var encoded = new List<byte[]>();
        foreach (var (sample, i) in test.Samples.Select((s, i) => (s, i)))
        {
            byte[] png = ImageEncoder.EncodePng(sample.Data.Span, sample.Width, sample.Height, sample.SourceChannels);
            string path = Path.Combine(folder, i.ToString("D5", CultureInfo.InvariantCulture) + ".png");
            File.WriteAllBytes(path, png);
            paths.Add(path);
            encoded.Add(png);
        }
        return (paths, encoded);
    }

    private static int ArgMax(float[] values) => Array.IndexOf(values, values.Max());

    private sealed class ImagePath
    {
        public string Path { get; set; } = "";
    }

    private sealed class Probabilities
    {
        [ColumnName("probabilities")]
        public float[] Values { get; set; } = [];
    }
}
