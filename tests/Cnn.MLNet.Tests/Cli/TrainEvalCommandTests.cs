using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using Cnn.MLNet.Tests.Training;
using Cnn.Tests.Shared;

namespace Cnn.MLNet.Tests.Cli;

/// <summary>
/// <c>cnn train</c>, <c>cnn eval</c> and <c>cnn predict --model-file</c> on a tiny generated folder of three colour classes, and the
/// Fashion-MNIST default path capped with <c>--limit</c>.
/// </summary>
[TestClass]
public sealed class TrainEvalCommandTests
{
    private static readonly string[] Classes = ["blue", "green", "red"];
    private const int PerClass = 16;

    private static TempDirectory? _dir;
    private static string _trainOutput = "";

    private static string Folder => _dir!.File("colours");

    private static string ModelFile => _dir!.File("colours.zip");

    [ClassInitialize]
    public static void TrainOnce(TestContext _)
    {
        _dir = new TempDirectory();
        WriteColourFolder(Folder, Classes, PerClass, seed: 5);
        _trainOutput = CliHost.Succeed("train", "--model", "resnet18", "--data", Folder, "--epochs", "4", "--batch-size", "8",
            "--precision", "float32", "--memory-format", "contiguous", "--image-size", "32", "--lr", "0.001", "--seed", "1", "--output", ModelFile);
    }

    [ClassCleanup]
    public static void RemoveFixture() => _dir?.Dispose();

    /// <summary>Noisy images dominated by one colour channel per class, of varying size and brightness.</summary>
    internal static void WriteColourFolder(string root, IReadOnlyList<string> classes, int perClass, int seed)
    {
        var random = new Random(seed);
        for (int c = 0; c < classes.Count; c++)
        {
            string folder = Path.Combine(root, classes[c]);
            Directory.CreateDirectory(folder);
            int channel = classes[c] switch { "red" => 0, "green" => 1, "blue" => 2, _ => c % 3 };
            for (int i = 0; i < perClass; i++)
            {
                int width = random.Next(36, 56), height = random.Next(36, 56);
                var pixels = new byte[width * height * 3];
                int level = random.Next(150, 256);
                for (int p = 0; p < width * height; p++)
                    for (int k = 0; k < 3; k++)
                        pixels[p * 3 + k] = (byte)Math.Clamp((k == channel ? level : 40) + random.Next(-40, 41), 0, 255);
                File.WriteAllBytes(Path.Combine(folder, $"{i:D2}.png"), ImageEncoder.EncodePng(pixels, width, height, 3));
            }
        }
    }

    [TestMethod]
    public void TrainShowsEpochProgressSavesAndEvaluatesTheSavedFile()
    {
        for (int epoch = 1; epoch <= 4; epoch++)
            StringAssert.Matches(_trainOutput, new Regex($@"epoch {epoch}/4  loss \d+\.\d{{4}} acc [\d.]+%  val loss \d+\.\d{{4}} acc [\d.]+%  lr \S+  \d+ img/s"));
        StringAssert.Contains(_trainOutput, "42 training, 6 validation images, 3 classes");
        StringAssert.Contains(_trainOutput, "augmentation on");
        StringAssert.Contains(_trainOutput, "saved: " + ModelFile);
        StringAssert.Matches(_trainOutput, new Regex(@"eval:  .*validation split: accuracy [\d.]+% .*6 images"));
        Assert.IsTrue(File.Exists(ModelFile));
    }

    [TestMethod]
    public void EvalPrintsAccuracyPerClassMetricsAndTheConfusionMatrix()
    {
        string text = CliHost.Succeed("eval", "--model-file", ModelFile, "--data", Folder);
        var accuracy = Regex.Match(text, @"accuracy ([\d.]+)%");
        Assert.IsTrue(accuracy.Success, text);
        double percent = double.Parse(accuracy.Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.IsTrue(percent > 66, $"three colours must be learnt well above chance (33%): {text}");
        StringAssert.Contains(text, "log-loss");
        StringAssert.Contains(text, "precision");
        StringAssert.Contains(text, "confusion matrix");
        foreach (var name in Classes) StringAssert.Matches(text, new Regex($@"\d {name}\s+[\d.]+%\s+[\d.]+%\s+{PerClass}"));

        using var json = JsonDocument.Parse(CliHost.Succeed("eval", "--model-file", ModelFile, "--data", Folder, "--json"));
        var root = json.RootElement;
        Assert.AreEqual(Classes.Length * PerClass, root.GetProperty("count").GetInt32());
        var matrix = root.GetProperty("confusion_matrix").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetInt32()).ToArray()).ToArray();
        Assert.AreEqual(3, matrix.Length);
        Assert.IsTrue(matrix.All(row => row.Length == 3 && row.Sum() == PerClass), "rows are the actual classes");
        double trace = Enumerable.Range(0, 3).Sum(i => matrix[i][i]);
        Assert.AreEqual(trace / (3 * PerClass), root.GetProperty("micro_accuracy").GetDouble(), 1e-9);
        Assert.AreEqual(percent / 100, root.GetProperty("micro_accuracy").GetDouble(), 0.0001);
        CollectionAssert.AreEqual(Classes, root.GetProperty("classes").EnumerateArray().Select(c => c.GetProperty("name").GetString()).ToArray());
    }

    [TestMethod]
    public void EvalOnOtherClassesIsAClearError()
    {
        string other = _dir!.File("pets");
        WriteColourFolder(other, ["cat", "dog"], 2, seed: 9);
        string line = CliHost.FailOneLine(1, "eval", "--model-file", ModelFile, "--data", other);
        StringAssert.Contains(line, "'cat', 'dog'");
        StringAssert.Contains(line, "the model's classes are 'blue', 'green', 'red'");

        line = CliHost.FailOneLine(1, "eval", "--model-file", ModelFile, "--limit", "20");
        StringAssert.Contains(line, "'T-shirt/top'");

        line = CliHost.FailOneLine(1, "eval", "--model-file", _dir.File("none.zip"));
        StringAssert.Contains(line, "none.zip");
    }

    [TestMethod]
    public void PredictWithAModelFileNamesClassesAndMatchesAFreshProcessExactly()
    {
        string image = Path.Combine(Folder, "red", "03.png");
        string inProcess = CliHost.Succeed("predict", "--model-file", ModelFile, "--json", "--top", "3", image);
        var line = CliHost.JsonLines(inProcess).Single();
        var probabilities = CliHost.Floats(line.GetProperty("probabilities"));
        Assert.AreEqual(3, probabilities.Length);
        Assert.AreEqual(1.0, probabilities.Sum(), 1e-5);
        var top = line.GetProperty("top").EnumerateArray().ToList();
        CollectionAssert.AreEquivalent(Classes, top.Select(t => t.GetProperty("label").GetString()).ToArray());
        Assert.AreEqual(probabilities.Max(), top[0].GetProperty("probability").GetSingle());

        // A fresh process: the model file alone must reproduce the scores bit for bit.
        string cnn = Path.Combine(AppContext.BaseDirectory, "cnn.dll");
        Assert.IsTrue(File.Exists(cnn), cnn);
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[] { cnn, "predict", "--model-file", ModelFile, "--json", "--top", "3", image }) info.ArgumentList.Add(argument);
        using var process = Process.Start(info)!;
        var error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        Assert.IsTrue(process.WaitForExit(120_000), "child process timed out");
        Assert.AreEqual(0, process.ExitCode, error.Result);
        var child = CliHost.JsonLines(output).Single();
        CollectionAssert.AreEqual(probabilities, CliHost.Floats(child.GetProperty("probabilities")), "identical scores in a fresh process");
        Assert.AreEqual(inProcess.Trim(), output.Trim());
    }

    [TestMethod]
    public void FashionMnistDefaultPathLoadsSplitsAndEvaluatesOnTheTestSplit()
    {
        string output = CliHost.Succeed("train", "--limit", "40", "--epochs", "1", "--batch-size", "16", "--output", _dir!.File("fashion.zip"));
        StringAssert.Contains(output, "data:  Fashion-MNIST train");
        // 40 images, 4 per class (balanced), 1 per class held out.
        StringAssert.Contains(output, "30 training, 10 validation images, 10 classes; 40 test images");
        StringAssert.Contains(output, "resnet18, 1 channel(s), image size 28, 1 epochs of batch 16");
        StringAssert.Contains(output, "augmentation flips");
        StringAssert.Matches(output, new Regex(@"eval:  Fashion-MNIST test .*: accuracy [\d.]+% .*40 images"));
        Assert.IsTrue(File.Exists(_dir.File("fashion.zip")));
    }

    /// <summary><c>--data</c> may name a folder of Fashion-MNIST IDX files: train and t10k splits, Fashion-MNIST's defaults.</summary>
    [TestMethod]
    public void IdxFolderTrainsOnItsTrainSplitAndEvaluatesOnItsTestSplit()
    {
        string idx = _dir!.File("idx");
        Directory.CreateDirectory(idx);
        foreach (var (train, prefix, perClass) in new[] { (true, "train", 3), (false, "t10k", 2) })
        {
            var slice = FashionMnistFixture.Slice(train, perClass);
            Assert.IsTrue(slice.Samples.All(s => s.Kind == ImageSampleKind.Pixels && s.SourceChannels == 1 && s.Width == 28 && s.Height == 28));
            var pixels = slice.Samples.SelectMany(s => s.Data.ToArray()).ToArray();
            IdxFile.Write(Path.Combine(idx, $"{prefix}-images-idx3-ubyte.gz"), new IdxArray([slice.Count, 28, 28], pixels));
            IdxFile.Write(Path.Combine(idx, $"{prefix}-labels-idx1-ubyte.gz"), new IdxArray([slice.Count], slice.Samples.Select(s => (byte)s.Label).ToArray()));
        }
        string model = _dir.File("idx.zip");
        string output = CliHost.Succeed("train", "--data", idx, "--epochs", "1", "--batch-size", "8", "--output", model);
        StringAssert.Contains(output, $"Fashion-MNIST train ({idx})");
        StringAssert.Contains(output, "20 training, 10 validation images, 10 classes; 20 test images");
        StringAssert.Contains(output, "resnet18, 1 channel(s), image size 28");
        StringAssert.Contains(output, $"eval:  Fashion-MNIST test ({idx})");
        string evaluation = CliHost.Succeed("eval", "--model-file", model, "--data", idx);
        StringAssert.Contains(evaluation, "20 images");
    }

    [TestMethod]
    public void TrainUsageAndDataErrors()
    {
        StringAssert.Contains(CliHost.FailOneLine(2, "train", "--freeze", "backbone"), "--weights");
        StringAssert.Contains(CliHost.FailOneLine(2, "train", "--freeze", "top"), "--freeze");
        StringAssert.Contains(CliHost.FailOneLine(2, "train", "--channels", "2"), "--channels");
        StringAssert.Contains(CliHost.FailOneLine(2, "train", "--augment", "maybe"), "--augment");
        StringAssert.Contains(CliHost.FailOneLine(2, "train", "--val-split", "1.5"), "--val-split");
        string missing = _dir!.File("no-such-folder");
        StringAssert.Contains(CliHost.FailOneLine(1, "train", "--data", missing), "no-such-folder");
        StringAssert.Contains(CliHost.FailOneLine(2, "train", "--model", "resnet5O", "--data", Folder), "did you mean resnet50");
        StringAssert.Contains(CliHost.Succeed("train", "--help"), "--limit N: use at most N images");
        var (exit, output, _) = CliHost.Run("help");
        Assert.AreEqual(0, exit);
        foreach (var verb in new[] { "predict", "features", "train", "eval" }) StringAssert.Contains(output, verb);
    }
}
