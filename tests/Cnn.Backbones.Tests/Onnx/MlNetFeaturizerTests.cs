using System.Reflection;
using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.Backbones.Onnx;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Onnx;

/// <summary>
/// ML.NET's pretrained ResNet-18 featurizer (NuGet Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1, restored by this test
/// project into the NuGet cache and read from there): a CNTK 2.6 export with BatchNorm kept, asymmetric pads and three blocks in
/// layer4, behind a preprocessing graph (RGB → BGR, minus a 224×224 mean image).
/// </summary>
[TestClass]
public sealed class MlNetFeaturizerTests
{
    private static string PackageFolder
    {
        get
        {
            string? folder = typeof(MlNetFeaturizerTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                .FirstOrDefault(a => a.Key == "DnnImageFeaturizerResNet18")?.Value;
            if (string.IsNullOrEmpty(folder) || !Directory.Exists(folder))
                Assert.Fail($"The package Microsoft.ML.DnnImageFeaturizer.ResNet18 is not in the NuGet cache ('{folder}'); run 'dotnet restore tests/Cnn.Backbones.Tests'.");
            return folder!;
        }
    }

    private static string Network => Path.Combine(PackageFolder, "tools", "DnnImageModels", "ResNet18Onnx", "ResNet18.onnx");

    private static string Preprocess => Path.Combine(PackageFolder, "tools", "DnnImageModels", "ResNetPrepOnnx", "ResNetPreprocess.onnx");

    private static float[] RunOnnxRuntime(string path, float[] input, long[] shape)
    {
        using var session = new InferenceSession(path);
        using var value = OrtValue.CreateTensorValueFromMemory(input, shape);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, new[] { session.InputNames[0] }, new[] { value }, new[] { session.OutputNames[0] });
        return results[0].GetTensorDataAsSpan<float>().ToArray();
    }

    private static (double Diff, double Scale) Compare(Tensor ours, float[] reference)
    {
        using var scope = torch.NewDisposeScope();
        var expected = torch.tensor(reference);
        var flat = ours.reshape(-1);
        Assert.AreEqual(expected.numel(), flat.numel());
        return ((flat - expected).abs().max().item<float>(), expected.abs().max().item<float>());
    }

    [TestMethod]
    public void ResNet18Featurizer_ImportsWithThreeBlocksInLayer4_AndItsPreprocessingAsConfig()
    {
        // The channel means of the mean image, from the file by onnx.numpy_helper (BGR order as stored).
        string[] lines = OnnxReference.Run("""
            m = onnx.load(sys.argv[1])
            image = numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == "MeanImage"))
            print(",".join(repr(float(v)) for v in image.reshape(3, -1).astype("float64").mean(axis=1)))
            net = onnx.load(sys.argv[2])
            print(",".join(t.name for t in net.graph.initializer))
            """, Preprocess, Network).Trim().Split('\n');
        double[] bgr = lines[0].Split(',').Select(v => double.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray();

        // WeightFile reads the CNTK export's initializers as they are named in the file.
        using (var raw = Cnn.Backbones.Weights.WeightFile.Load(Network))
            CollectionAssert.AreEqual(lines[1].Trim().Split(','), raw.Keys.ToArray());

        using var result = OnnxImporter.ImportWithPreprocessing(Preprocess, Network, "resnet18");
        CollectionAssert.AreEqual(new[] { 2, 2, 2, 3 }, result.Options.BlockCounts!.ToArray(), "block counts read off the graph");
        Assert.AreEqual(0, result.Report.NumClasses, "a featurizer: no classifier");
        Assert.IsTrue(result.Report.RelativeDifference <= 1e-4, result.Report.RelativeDifference.ToString());
        Assert.AreEqual(22, result.Report.LayersCompared, "22 convolutions, each with its BatchNorm");
        Assert.IsTrue(result.Report.Entries.All(e => e.OnnxTensor is not null || e.StateDictKey.EndsWith("num_batches_tracked", StringComparison.Ordinal)),
                      "CNTK keeps the BatchNorm nodes: every tensor comes from the file");

        Assert.IsTrue(result.Report.PreprocessedRelativeDifference <= 1e-4, $"exact mean image: {result.Report.PreprocessedRelativeDifference}");
        Assert.IsTrue(result.Report.PerChannelMeanRelativeDifference > result.Report.PreprocessedRelativeDifference,
                      "the per-channel mean approximates the mean image: it costs more than float rounding");
        var config = result.PretrainedConfig!;
        for (int c = 0; c < 3; c++)
        {
            Assert.AreEqual(bgr[2 - c] / 255, config.Mean[c], 1e-6, $"mean of RGB channel {c}");
            Assert.AreEqual(1.0 / 255, config.Std[c], 1e-12);
        }
        Assert.AreEqual(224, config.InputSize.Height);
        Console.WriteLine($"ML.NET ResNet-18: verification max |diff| {result.Report.MaxAbsDifference:G3} (relative {result.Report.RelativeDifference:G3}); " +
                          $"with its preprocessing: exact mean {result.Report.PreprocessedRelativeDifference:G3}, per-channel {result.Report.PerChannelMeanRelativeDifference:G3}; " +
                          $"config mean {string.Join(", ", config.Mean.Select(m => m.ToString("G5")))}, std 1/255");
    }

    [TestMethod]
    public void ResNet18Featurizer_FeaturesEqualOnnxRuntimeOnTheTwoMlNetFiles()
    {
        using var result = OnnxImporter.ImportWithPreprocessing(Preprocess, Network, "resnet18");
        var config = result.PretrainedConfig!;
        using var model = ModelRegistry.Create("resnet18", result.Options);
        model.LoadWeights(result.Weights);
        model.eval();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var preprocessing = OnnxPreprocessing.Read(Preprocess);
        var meanImageRgb = preprocessing.Mean.index_select(1, torch.tensor(new long[] { 2, 1, 0 })); // stored BGR

        // Three smooth RGB images with 0–255 integer pixels (bilinear upsampling of seeded noise, like photos' low frequencies).
        var generator = new torch.Generator(11);
        var images = nn.functional.interpolate(torch.rand(new long[] { 3, 3, 14, 14 }, generator: generator).Times(255), new long[] { 224, 224 },
            mode: InterpolationMode.Bilinear, align_corners: false).round().ClampInPlace(0, 255);
        var mean = torch.tensor(config.Mean.Select(m => (float)m).ToArray()).reshape(1, 3, 1, 1);
        var std = torch.tensor(config.Std.Select(s => (float)s).ToArray()).reshape(1, 3, 1, 1);
        double worstExact = 0, worstChannel = 0, worstReference = 0;
        for (int i = 0; i < 3; i++)
        {
            var image = images[i].unsqueeze(0);
            long[] shape = [1, 3, 224, 224];
            // ML.NET: the preprocessing graph, then the network, both in ONNX Runtime.
            float[] prepared = RunOnnxRuntime(Preprocess, image.contiguous().data<float>().ToArray(), shape);
            float[] reference = RunOnnxRuntime(Network, prepared, shape);

            // Ours with the mean image applied exactly (RGB input, channel order folded into conv1): the same function.
            var (exact, scale) = Compare(model.call(image - meanImageRgb), reference);
            Assert.IsTrue(exact <= 1e-4 * scale, $"image {i}: exact preprocessing differs by {exact} of {scale}");

            // Ours with the pretrained config, (x/255 − mean)/std per channel: differs from ML.NET only where the mean image
            // departs from its channel means. ONNX Runtime's network on that same per-channel input measures that departure on
            // the reference itself; ours must equal that run numerically and so be as close to ML.NET's as the reference is.
            var perChannel = (image.DividedBy(255) - mean) / std;
            var ours = model.call(perChannel);
            var bgr = perChannel.index_select(1, torch.tensor(new long[] { 2, 1, 0 }));
            float[] referencePerChannel = RunOnnxRuntime(Network, bgr.contiguous().data<float>().ToArray(), shape);
            var (numeric, _) = Compare(ours, referencePerChannel);
            Assert.IsTrue(numeric <= 1e-4 * scale, $"image {i}: per-channel input, ours vs ONNX Runtime: {numeric} of {scale}");
            var (channel, _) = Compare(ours, reference);
            var (approximation, _) = Compare(torch.tensor(referencePerChannel), reference);
            Assert.IsTrue(channel <= approximation + 1e-4 * scale,
                $"image {i}: per-channel config vs ML.NET {channel}, more than the mean-image approximation itself ({approximation})");
            worstExact = Math.Max(worstExact, exact / scale);
            worstChannel = Math.Max(worstChannel, channel / scale);
            worstReference = Math.Max(worstReference, approximation / scale);
        }
        Console.WriteLine($"relative max |diff| to ML.NET: exact mean image {worstExact:G3}; per-channel config {worstChannel:G3} " +
                          $"(ONNX Runtime itself with the per-channel mean: {worstReference:G3})");
    }
}
