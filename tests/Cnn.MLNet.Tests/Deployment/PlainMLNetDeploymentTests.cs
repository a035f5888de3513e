using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Cnn.Cli.Inference;
using Cnn.MLNet.Data;
using Cnn.MLNet.Export;
using Cnn.MLNet.Imaging;
using Cnn.MLNet.Persistence;
using Cnn.MLNet.Tests.Cli;
using Cnn.Tests.Shared;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Cnn.MLNet.Tests.Deployment;

/// <summary>
/// <c>cnn train</c> (LeNet-5 at Fashion-MNIST's 28×28: no resizing) → <c>cnn export --format mlnet</c> → a process that references
/// only Microsoft.ML, ImageAnalytics and OnnxTransformer (tests/PlainMLNet) loads the zip with <c>mlContext.Model.Load</c> and
/// predicts all test images: the same class as our transformer everywhere, probabilities within 1e-4, ML.NET's evaluator on its
/// output, no TorchSharp or Cnn assembly loaded. The serving example (examples/Serving) started on a loopback port answers like
/// the library, rejects garbage (400) and oversized bodies (413), and serves 8 concurrent clients.
/// </summary>
[TestClass]
public sealed class PlainMLNetDeploymentTests
{
    private static TempDirectory? _dir;
    private static IReadOnlyList<string> _paths = [];
    private static IReadOnlyList<string> _labels = [];
    private static float[][] _ours = [];

    private static string Model => _dir!.File("lenet5.zip");

    private static string Plain => _dir!.File("plain.zip");

    [ClassInitialize]
    public static void TrainAndExport(TestContext _)
    {
        _dir = new TempDirectory();
        CliHost.Succeed("train", "-m", "lenet5", "--limit", "300", "-e", "1", "-b", "32", "--image-size", "28",
            "--precision", "float32", "--memory-format", "contiguous", "-q", "-o", Model);
        string text = CliHost.Succeed("export", "--model-file", Model, "--format", "mlnet", "-o", Plain);
        StringAssert.Contains(text, "input:  Image (image: MLImage), Label (text)");
        StringAssert.Contains(text, $"wrote {Plain}");
        var test = FashionMnist.Load(FashionMnistSplit.Test);
        var (paths, encoded) = WritePngs(test, _dir.File("images"));
        _paths = paths;
        _labels = test.Samples.Select(s => test.ClassNames[s.Label]).ToArray();
        using var pipeline = PipelineModel.Load(Model);
        _ours = PipelineModel.Scores(pipeline.Model.Transform(pipeline.ViewOf(paths, encoded)));
    }

    [ClassCleanup]
    public static void Remove() => _dir?.Dispose();

    [TestMethod]
    public void PlainProcess_LoadsTheExportAndPredictsAsOurTransformer_WithoutTorchSharp()
    {
        string list = _dir!.File("images.tsv"), result = _dir.File("result.json");
        File.WriteAllLines(list, _paths.Select((p, i) => p + "\t" + _labels[i]));
        var (exit, output, error) = SiblingProcess.Run(SiblingProcess.Built("tests/PlainMLNet", "PlainMLNet"), TimeSpan.FromMinutes(5), Plain, list, result);
        Assert.AreEqual(0, exit, output + error);

        using var json = JsonDocument.Parse(File.ReadAllText(result));
        var root = json.RootElement;
        var assemblies = root.GetProperty("Assemblies").EnumerateArray().Select(a => a.GetString()!).ToList();
        CollectionAssert.Contains(assemblies, "Microsoft.ML.OnnxTransformer", "the process ran ML.NET's ONNX scorer");
        Assert.IsFalse(assemblies.Any(a => a.StartsWith("TorchSharp", StringComparison.OrdinalIgnoreCase) || a.StartsWith("Cnn.", StringComparison.Ordinal)),
            string.Join(", ", assemblies));

        var theirs = root.GetProperty("Scores").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray();
        var predicted = root.GetProperty("Predicted").EnumerateArray().Select(v => v.GetString()!).ToArray();
        Assert.AreEqual(_paths.Count, theirs.Length);
        var classes = FashionMnist.ClassNames;
        double worst = 0;
        int correct = 0;
        for (int i = 0; i < _paths.Count; i++)
        {
            int ours = ArgMax(_ours[i]);
            Assert.AreEqual(ours, ArgMax(theirs[i]), $"{_paths[i]}: predicted class (scores)");
            Assert.AreEqual(classes[ours], predicted[i], $"{_paths[i]}: PredictedLabel → MapKeyToValue");
            worst = Math.Max(worst, _ours[i].Zip(theirs[i], (a, b) => Math.Abs(a - b)).Max());
            if (classes[ours] == _labels[i]) correct++;
        }
        Assert.IsTrue(worst <= 1e-4, $"largest |our score − plain ML.NET's| = {worst}");
        CollectionAssert.AreEqual(classes.ToArray(), root.GetProperty("SlotNames").EnumerateArray().Select(v => v.GetString()).ToArray(), "Score's slot names");
        CollectionAssert.AreEqual(classes.ToArray(), root.GetProperty("KeyValues").EnumerateArray().Select(v => v.GetString()).ToArray(), "PredictedLabel's key values");
        // ML.NET's own evaluator on the plain model's output: the accuracy of the same predictions.
        Assert.AreEqual((double)correct / _paths.Count, root.GetProperty("MicroAccuracy").GetDouble(), 1e-12, "MulticlassClassification.Evaluate's micro accuracy");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{_paths.Count} test images: same class everywhere, largest score difference {worst:G3}; accuracy {100.0 * correct / _paths.Count:F2}% (ML.NET's evaluator agrees)"));
    }

    [TestMethod]
    public void ConsumptionCode_IsWrittenBesideTheModel()
    {
        string code = File.ReadAllText(_dir!.File("plain.consumption.cs"));
        StringAssert.Contains(code, "public sealed class ModelInput");
        StringAssert.Contains(code, "[ColumnName(\"Image\")][ImageType(28, 28)]");
        StringAssert.Contains(code, "public MLImage Image { get; set; }");
        StringAssert.Contains(code, "public sealed class ModelOutput");
        StringAssert.Contains(code, "[ColumnName(\"Score\")][VectorType(10)]");
        StringAssert.Contains(code, "public string PredictedClass { get; set; }");
        StringAssert.Contains(code, "mlContext.Model.Load(Path.Combine(AppContext.BaseDirectory, \"plain.zip\"), out _)");
        StringAssert.Contains(code, "CreatePredictionEngine<ModelInput, ModelOutput>(model)");
    }

    [TestMethod]
    public void DependencyGraphs_OfThePlainProgramAndTheServingExample_HaveNoTorchSharp()
    {
        foreach (var project in new[] { "tests/PlainMLNet", "examples/Serving" })
        {
            var libraries = SiblingProcess.DependencyGraph(project);
            Assert.IsTrue(libraries.Any(l => l.StartsWith("Microsoft.ML.OnnxTransformer/", StringComparison.Ordinal)), project + ": " + string.Join(", ", libraries));
            var forbidden = libraries.Where(l => l.StartsWith("TorchSharp", StringComparison.OrdinalIgnoreCase) || l.StartsWith("libtorch", StringComparison.OrdinalIgnoreCase)
                                                 || l.StartsWith("Cnn.MLNet/", StringComparison.Ordinal) || l.StartsWith("Cnn.Backbones/", StringComparison.Ordinal)).ToList();
            Assert.AreEqual(0, forbidden.Count, $"{project} depends on {string.Join(", ", forbidden)}");
        }
    }

    [TestMethod]
    public void ModelSave_OnOurPipeline_NamesThePlainPath_AndTheConvertedPipelineSavesAndLoads()
    {
        var ml = new MLContext(seed: 0);
        var model = CnnPipelineFile.Load(ml, Model, out var schema);
        try
        {
            var ex = Assert.ThrowsExactly<NotSupportedException>(() => ml.Model.Save(model, schema, new MemoryStream()));
            StringAssert.Contains(ex.Message, "Cnn.MLNet.Export.MLNetExport.ToOnnxPipeline(mlContext, model, data.Schema)");
            StringAssert.Contains(ex.Message, "cnn export --model-file model.zip --format mlnet");

            var plain = MLNetExport.ToOnnxPipeline(ml, model, schema);
            var stream = new MemoryStream();
            ml.Model.Save(plain.Model, plain.InputSchema, stream);
            stream.Position = 0;
            var loaded = ml.Model.Load(stream, out _);
            var output = loaded.GetOutputSchema(plain.InputSchema);
            Assert.IsInstanceOfType<KeyDataViewType>(output["PredictedLabel"].Type);
            Assert.AreEqual(10UL, ((KeyDataViewType)output["PredictedLabel"].Type).Count);
            Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Single, 10), output["Score"].Type);
            Assert.IsFalse(output.Any(c => c.Name.StartsWith("__cnn", StringComparison.Ordinal)), "temporary columns are dropped");
            Assert.AreEqual("Image", plain.ImageColumn);
            Assert.AreEqual(28, plain.ResizedSize);
        }
        finally
        {
            foreach (var stage in CnnPipelineFile.Stages(model).OfType<IDisposable>()) stage.Dispose();
        }
    }

    [TestMethod]
    public void ClassifierAlone_WithPathInput_PredictsAsOurTransformer()
    {
        var ml = new MLContext(seed: 0);
        var model = CnnPipelineFile.Load(ml, Model, out _);
        try
        {
            var classifier = CnnPipelineFile.Stages(model).OfType<Cnn.MLNet.Scoring.CnnClassifierTransformer>().Single();
            var plain = classifier.ToOnnxPipeline(ml, new MLNetExportOptions { ImageInput = MLNetImageInput.Path });
            Assert.AreEqual(MLNetImageInput.Path, plain.ImageInput);
            Assert.AreEqual(TextDataViewType.Instance, plain.InputSchema["Image"].Type);
            StringAssert.Contains(plain.Preprocessing, "PIL's grey conversion in the graph");
            var rows = _paths.Take(300).Select(p => new PathRow { Image = p }).ToList();
            var scored = plain.Model.Transform(ml.Data.LoadFromEnumerable(rows));
            var theirs = scored.GetColumn<float[]>("Score").ToArray();
            var keys = scored.GetColumn<uint>("PredictedLabel").ToArray();
            for (int i = 0; i < rows.Count; i++)
            {
                int ours = ArgMax(_ours[i]);
                Assert.AreEqual(ours + 1, (int)keys[i], $"image {i}: PredictedLabel key");
                Assert.IsTrue(_ours[i].Zip(theirs[i], (a, b) => Math.Abs(a - b)).Max() <= 1e-4, $"image {i}: scores");
            }
            Assert.ThrowsExactly<ArgumentException>(() => new MLNetExportOptions { ImageFolder = "images" }.Validate());
        }
        finally
        {
            foreach (var stage in CnnPipelineFile.Stages(model).OfType<IDisposable>()) stage.Dispose();
        }
    }

    [TestMethod]
    public void CliErrors_AreOneLineAndSayWhatToDo()
    {
        StringAssert.Contains(CliHost.FailOneLine(2, "export", "--model-file", Model, "--format", "tflite"), "--format: 'tflite' is not a format; give onnx, mlnet or timm");
        StringAssert.Contains(CliHost.FailOneLine(2, "export", "--model", "lenet5", "--format", "mlnet"), "--format mlnet needs --model-file <model.zip>");
        StringAssert.Contains(CliHost.FailOneLine(2, "export", "--model-file", Model, "--format", "mlnet", "--probabilities"), "--probabilities does not apply to --format mlnet");
        StringAssert.Contains(CliHost.FailOneLine(2, "export", "--model-file", Model, "--image-input", "path"), "--image-input applies to --format mlnet only");
        StringAssert.Contains(CliHost.FailOneLine(2, "export", "--model-file", Model, "--format", "mlnet", "--image-input", "bytes"), "--image-input: 'bytes' is not an input kind");
        StringAssert.Contains(CliHost.FailOneLine(1, "export", "--model-file", _dir!.File("missing.zip"), "--format", "mlnet"), "model file not found");
        Assert.IsFalse(File.Exists(_dir.File("missing.mlnet.zip")));
    }

    [TestMethod]
    public async Task ServingExample_AnswersLikeTheLibrary_Rejects400And413_AndServesConcurrentClients()
    {
        const int maxBytes = 64 * 1024;
        int port = SiblingProcess.FreePort();
        using var server = SiblingProcess.Start(SiblingProcess.Built("examples/Serving", "Serving"),
            "--Model", Plain, "--MaxImageBytes", maxBytes.ToString(CultureInfo.InvariantCulture), "--urls", $"http://127.0.0.1:{port}",
            "--Logging:LogLevel:Default", "Warning");
        var log = server.StandardOutput.ReadToEndAsync();
        var errors = server.StandardError.ReadToEndAsync();
        try
        {
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(60) };
            var health = await WaitHealthy(client, server, errors, TimeSpan.FromSeconds(90));
            Assert.AreEqual(10, health.GetProperty("classes").GetInt32());

            for (int i = 0; i < 20; i++)
            {
                var top = await Predict(client, i);
                Assert.AreEqual(FashionMnist.ClassNames[ArgMax(_ours[i])], top[0].Label, $"image {i}: top class");
                Assert.AreEqual(_ours[i].Max(), top[0].Probability, 1e-4, $"image {i}: top probability");
            }

            // Refused bodies go through a client of their own: the server closes a connection whose oversized body it did not read,
            // and a pooled connection closed that way would fail the next request sent on it (the concurrent clients' below).
            using var refusals = new HttpClient { BaseAddress = client.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
            using (var garbage = await refusals.PostAsync("/predict", new ByteArrayContent("this is not an image"u8.ToArray())))
            {
                Assert.AreEqual(HttpStatusCode.BadRequest, garbage.StatusCode);
                StringAssert.Contains(await garbage.Content.ReadAsStringAsync(), "is not an image this server can decode");
            }
            var big = new byte[maxBytes + 1];
            new Random(1).NextBytes(big);
            using (var oversized = await refusals.PostAsync("/predict", new ByteArrayContent(big)))
                Assert.AreEqual(HttpStatusCode.RequestEntityTooLarge, oversized.StatusCode);

            // 8 clients × 25 requests, all at once: every answer 200 and right (the engines come from a pool).
            var clients = Enumerable.Range(0, 8).Select(c => Task.Run(async () =>
            {
                for (int r = 0; r < 25; r++)
                {
                    int i = (c * 25 + r) % 20;
                    var top = await Predict(client, i);
                    Assert.AreEqual(FashionMnist.ClassNames[ArgMax(_ours[i])], top[0].Label, $"client {c}, request {r}: image {i}");
                }
            })).ToArray();
            await Task.WhenAll(clients);
        }
        finally
        {
            if (!server.HasExited) server.Kill(entireProcessTree: true);
            server.WaitForExit(10_000);
        }
        Assert.IsFalse((await errors).Contains("Exception", StringComparison.Ordinal), await errors);
        _ = await log;
    }

    private static async Task<IReadOnlyList<TopClass>> Predict(HttpClient client, int image)
    {
        using var response = await client.PostAsync("/predict?top=3", new ByteArrayContent(File.ReadAllBytes(_paths[image])));
        Assert.AreEqual(HttpStatusCode.OK, response.StatusCode, await response.Content.ReadAsStringAsync());
        var body = await response.Content.ReadFromJsonAsync<PredictBody>();
        Assert.IsNotNull(body);
        Assert.AreEqual(3, body.Predictions.Count);
        return body.Predictions;
    }

    private static async Task<JsonElement> WaitHealthy(HttpClient client, System.Diagnostics.Process server, Task<string> errors, TimeSpan timeout)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (server.HasExited) Assert.Fail("the serving example exited: " + await errors);
            try
            {
                using var response = await client.GetAsync("/health");
                if (response.IsSuccessStatusCode)
                    return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            await Task.Delay(250);
        }
        Assert.Fail($"the serving example did not answer /health in {timeout.TotalSeconds} s");
        return default;
    }

    internal static (IReadOnlyList<string> Paths, IReadOnlyList<byte[]> Encoded) WritePngs(ImageDataset dataset, string folder)
    {
        Directory.CreateDirectory(folder);
        var paths = new List<string>();
        var encoded = new List<byte[]>();
        foreach (var (sample, i) in dataset.Samples.Select((s, i) => (s, i)))
        {
            byte[] png = ImageEncoder.EncodePng(sample.Data.Span, sample.Width, sample.Height, sample.SourceChannels);
            string path = Path.Combine(folder, i.ToString("D5", CultureInfo.InvariantCulture) + ".png");
            File.WriteAllBytes(path, png);
            paths.Add(path);
            encoded.Add(png);
        }
        return (paths, encoded);
    }

    internal static int ArgMax(float[] values) => Array.IndexOf(values, values.Max());

    private sealed class PathRow
    {
        public string Image { get; set; } = "";
    }

    private sealed record TopClass(string Label, float Probability);

    private sealed record PredictBody(List<TopClass> Predictions);
}
