using System.Globalization;
using System.Text.RegularExpressions;

namespace Cnn.MLNet.Tests.Cli;

/// <summary>What the library can do is reachable from the command line: optimiser, schedule, early stopping, validation folder,
/// threads, metrics CSV; predict and features on folders, with an input size, as CSV; features of a saved model; top-K accuracy.</summary>
[TestClass]
public sealed class CliOptionsTests
{
    private static readonly string[] Classes = ["blue", "green", "red"];
    private static Cnn.Tests.Shared.TempDirectory? _dir;
    private static string _output = "";

    private static string Model => _dir!.File("sgd.zip");

    [ClassInitialize]
    public static void TrainOnce(TestContext _)
    {
        _dir = new Cnn.Tests.Shared.TempDirectory();
        TrainEvalCommandTests.WriteColourFolder(_dir.File("train"), Classes, 8, seed: 2);
        TrainEvalCommandTests.WriteColourFolder(_dir.File("val"), Classes, 3, seed: 3);
        _output = CliHost.Succeed("train", "-m", "resnet18", "--data", _dir.File("train"), "--val-data", _dir.File("val"), "-e", "3", "-b", "6",
            "--image-size", "32", "--opt", "sgd", "--lr", "0.02", "--warmup", "0.5", "--weight-decay", "0.001", "--patience", "2", "--threads", "2",
            "--device", "cpu", "-q", "--plot", "-o", Model);
    }

    [ClassCleanup]
    public static void Remove() => _dir?.Dispose();

    [TestMethod]
    public void TrainingOptionsAndTheMetricsCsv()
    {
        StringAssert.Contains(_output, "SGD lr 0.02 (cosine, 0.5 warm-up epochs), early stopping after 2 epochs without improvement");
        StringAssert.Contains(_output, "24 training, 9 validation images");
        StringAssert.Matches(_output, new Regex(@"eval:  .*val.*: accuracy [\d.]+% .*9 images"));
        string csv = _dir!.File("sgd.metrics.csv");
        StringAssert.Contains(_output, "metrics: " + csv);
        var lines = File.ReadAllLines(csv);
        Assert.AreEqual("epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,images_per_second,seconds,skipped_images", lines[0]);
        var epochs = Regex.Matches(_output, @"epoch (\d)/3 ").Count;
        Assert.AreEqual(epochs + 1, lines.Length, "one row per epoch printed");
        var first = lines[1].Split(',');
        Assert.AreEqual("1", first[0]);
        Assert.IsTrue(double.Parse(first[3], CultureInfo.InvariantCulture) > 0, "validation loss recorded");

        StringAssert.Contains(CliHost.FailOneLine(2, "train", "--limit", "20", "--patience", "2", "--val-split", "0"), "--patience needs validation data");
        StringAssert.Contains(CliHost.FailOneLine(2, "train", "--limit", "20", "-e", "2", "--warmup", "3"), "--warmup");
        StringAssert.Contains(CliHost.FailOneLine(2, "train", "--limit", "20", "--opt", "lion"), "adamw or sgd");
        StringAssert.Contains(CliHost.FailOneLine(2, "train", "--limit", "20", "--device", "tpu"), "auto, cpu or cuda");
        StringAssert.Contains(CliHost.FailOneLine(2, "train", "--val-data", "v", "--val-split", "0.2"), "not both");
    }

    [TestMethod]
    public void PredictAndFeaturesOnAFolderAsCsv()
    {
        string folder = _dir!.File("val");
        var predict = CliHost.Succeed("predict", "--model-file", Model, "--csv", "--top", "2", folder).Trim().Split('\n');
        Assert.AreEqual("file,top1_index,top1_label,top1_probability,top2_index,top2_label,top2_probability", predict[0].Trim());
        Assert.AreEqual(1 + 9, predict.Length, "a header and a row per image of the folder");
        StringAssert.Contains(predict[1], Path.Combine(folder, "blue", "00.png"));

        var features = CliHost.Succeed("features", "--model-file", Model, "--csv", folder).Trim().Split('\n');
        Assert.AreEqual(512 + 1, features[0].Split(',').Length, "file + resnet18's 512 pooled features");
        Assert.AreEqual(10, features.Length);
        // The same network's features through --json agree with the CSV (to float rounding: batches of 1 and 9 run other kernels).
        var json = CliHost.JsonLines(CliHost.Succeed("features", "--model-file", Model, "--json", Path.Combine(folder, "blue", "00.png"))).Single();
        var fromCsv = features[1].Split(',').Skip(1).Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        CliHost.AssertClose(CliHost.Floats(json.GetProperty("features")), fromCsv, 1e-5, "features of one image alone and in a batch of 9");

        // --image-size sets the size the registered model's preprocessing resizes to: a ViT is built for it, so a wrong size would fail.
        var sized = CliHost.JsonLines(CliHost.Succeed("features", "-m", "resnet18", "--image-size", "48", "--json", Path.Combine(folder, "red", "00.png"))).Single();
        Assert.AreEqual(512, CliHost.Floats(sized.GetProperty("features")).Length);
        StringAssert.Contains(CliHost.FailOneLine(2, "features", "--model-file", Model, "--image-size", "48", folder), "apply to --model only");
        StringAssert.Contains(CliHost.FailOneLine(2, "predict", "--model-file", Model, "--csv", "--json", folder), "not both");
        StringAssert.Contains(CliHost.FailOneLine(2, "predict", "--model-file", Model, "--batch-size", "4", folder), "--batch-size apply to --model only");
    }

    private static (int Width, int Height) PngSize(string path)
    {
        var image = Cnn.MLNet.Imaging.ImageDecoder.Decode(File.ReadAllBytes(path), 3, path);
        return (image.Width, image.Height);
    }

    [TestMethod]
    public void PicturesFromTheCommandLine()
    {
        // Training curves beside the model (--plot in the class set-up).
        Assert.AreEqual((1500, 450), PngSize(_dir!.File("sgd.curves.png")));
        StringAssert.Contains(_output, "curves:  " + _dir.File("sgd.curves.png"));

        // Confusion matrix.
        string cm = _dir.File("cm.png");
        StringAssert.Contains(CliHost.Succeed("eval", "--model-file", Model, "--data", _dir.File("val"), "--plot", cm), "confusion matrix: " + cm);
        Assert.AreEqual((800, 700), PngSize(cm));

        // Grad-CAM of a given class at a given stage; the overlay has the model's input size.
        string image = Path.Combine(_dir.File("val"), "red", "00.png");
        string cam = _dir.File("cam.png");
        string explained = CliHost.Succeed("explain", "--model-file", Model, "--class", "green", "--stage", "3", "-o", cam, image);
        StringAssert.Contains(explained, "class 1 'green'");
        StringAssert.Contains(explained, "stage 3 (layer3, 2x2)");
        Assert.AreEqual((32, 32), PngSize(cam));
        StringAssert.Contains(CliHost.FailOneLine(2, "explain", "--model-file", Model, "--class", "purple", image), "not a class of the model");
        StringAssert.Contains(CliHost.FailOneLine(1, "explain", "--model-file", Model, "--stage", "9", image), "stage");

        // Feature maps of layer1 (64 channels of 8x8 at 32 px input), as a grid.
        string grid = _dir.File("grid.png");
        StringAssert.Contains(CliHost.Succeed("feature-maps", "--model-file", Model, "--stage", "1", "-o", grid, image), "64 channels of 8x8");
        var (width, height) = PngSize(grid);
        Assert.IsTrue(width == height && width > 8 * 8, $"an 8x8 grid of enlarged tiles, got {width}x{height}");

        // The learning-rate finder on the training folder.
        string lr = _dir.File("lr.png");
        string found = CliHost.Succeed("lr-find", "-m", "resnet18", "--data", _dir.File("train"), "--image-size", "32", "-b", "6", "--steps", "12", "-o", lr);
        StringAssert.Matches(found, new Regex(@"suggested lr: (\S+|none)"));
        Assert.AreEqual((900, 550), PngSize(lr));
        StringAssert.Contains(CliHost.FailOneLine(2, "lr-find", "--start-lr", "1", "--end-lr", "0.1"), "--end-lr");
    }

    [TestMethod]
    public void EvalReportsTopKAccuracy()
    {
        string output = CliHost.Succeed("eval", "--model-file", Model, "--data", _dir!.File("val"), "--topk", "3");
        StringAssert.Contains(output, "top-3 accuracy 100.00%", "with 3 classes the top 3 always holds the label");
        StringAssert.Contains(CliHost.FailOneLine(2, "eval", "--model-file", Model, "--data", _dir.File("val"), "--topk", "4"), "exceeds the model's 3 classes");
    }
}
