using System.Text.RegularExpressions;
using Cnn.MLNet.Imaging;
using Cnn.MLNet.Tests.Cli;
using Cnn.Tests.Shared;

namespace Cnn.MLNet.Tests.Distillation;

/// <summary><c>cnn distill</c> from a <c>cnn train</c> teacher on a tiny generated colour folder plus unlabelled images; the student works with eval and predict.</summary>
[TestClass]
public sealed class DistillCommandTests
{
    private static readonly string[] Classes = ["blue", "green", "red"];
    private static TempDirectory? _dir;

    private static string Labelled => _dir!.File("colours");

    private static string Unlabelled => _dir!.File("unlabelled");

    private static string Teacher => _dir!.File("teacher.zip");

    [ClassInitialize]
    public static void TrainTeacher(TestContext _)
    {
        _dir = new TempDirectory();
        var random = new Random(11);
        for (int c = 0; c < Classes.Length; c++)
            for (int i = 0; i < 10; i++)
                WriteImage(Path.Combine(Labelled, Classes[c], $"{i:D2}.png"), c, random);
        for (int i = 0; i < 12; i++)
            WriteImage(Path.Combine(Unlabelled, i % 2 == 0 ? "a" : "b", $"{i:D2}.png"), i % 3, random);
        CliHost.Succeed("train", "--model", "resnet18", "--data", Labelled, "--epochs", "3", "--batch-size", "8", "--image-size", "32",
            "--val-split", "0", "--augment", "off", "--seed", "1", "--output", Teacher);
    }

    [ClassCleanup]
    public static void RemoveFixture() => _dir?.Dispose();

    /// <summary>A noisy image dominated by one colour channel (0 red, 1 green, 2 blue → class folders blue/green/red by name).</summary>
    private static void WriteImage(string path, int classIndex, Random random)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        int channel = Classes[classIndex] switch { "red" => 0, "green" => 1, _ => 2 };
        int width = random.Next(36, 48), height = random.Next(36, 48), level = random.Next(170, 256);
        var pixels = new byte[width * height * 3];
        for (int p = 0; p < width * height; p++)
            for (int k = 0; k < 3; k++)
                pixels[p * 3 + k] = (byte)Math.Clamp((k == channel ? level : 40) + random.Next(-40, 41), 0, 255);
        File.WriteAllBytes(path, ImageEncoder.EncodePng(pixels, width, height, 3));
    }

    [TestMethod]
    public void DistillSavesAStudentThatEvalAndPredictUse()
    {
        string student = _dir!.File("student.zip");
        string output = CliHost.Succeed("distill", "--teacher", Teacher, "--student", "lenet5", "--data", Labelled, "--unlabeled", Unlabelled,
            "--temperature", "3", "--alpha", "0.3", "--epochs", "4", "--batch-size", "8", "--lr", "0.003", "--output", student);
        StringAssert.Contains(output, "30 labelled images");
        StringAssert.Contains(output, "12 unlabelled");
        StringAssert.Contains(output, "student: lenet5, 3 channel(s), image size 32");
        StringAssert.Matches(output, new Regex(@"epoch 4/4  loss [\d.]+ \(hard [\d.]+, soft [\d.]+\)  acc [\d.]+%  agreement [\d.]+%"));
        StringAssert.Matches(output, new Regex(@"student: .*accuracy [\d.]+% .*30 images"));
        StringAssert.Matches(output, new Regex(@"teacher: .*accuracy [\d.]+% .*30 images"));
        Assert.IsTrue(File.Exists(student));

        string evaluation = CliHost.Succeed("eval", "--model-file", student, "--data", Labelled);
        StringAssert.Contains(evaluation, "confusion matrix");
        foreach (var name in Classes) StringAssert.Contains(evaluation, name);
        var predicted = CliHost.JsonLines(CliHost.Succeed("predict", "--model-file", student, "--json", Path.Combine(Labelled, "red", "00.png"))).Single();
        Assert.AreEqual(3, CliHost.Floats(predicted.GetProperty("probabilities")).Length);
    }

    [TestMethod]
    public void UnlabelledOnlyWithPseudoLabels()
    {
        string output = CliHost.Succeed("distill", "--teacher", Teacher, "--student", "lenet5", "--unlabeled", Unlabelled, "--pseudo-labels",
            "--epochs", "1", "--batch-size", "4", "--output", _dir!.File("pseudo.zip"));
        StringAssert.Contains(output, "0 labelled images");
        StringAssert.Contains(output, "pseudo-labels");
        StringAssert.Matches(output, new Regex(@"epoch 1/1  loss [\d.]+ \(hard [\d.]+, soft [\d.]+\)  agreement"));
    }

    /// <summary><c>--val-split</c> holds out part of the images: each epoch reports the student's validation loss, accuracy and agreement.</summary>
    [TestMethod]
    public void ValidationSplitIsReportedEveryEpoch()
    {
        string output = CliHost.Succeed("distill", "--teacher", Teacher, "--student", "lenet5", "--data", Labelled, "--unlabeled", Unlabelled,
            "--val-split", "0.3", "--epochs", "2", "--batch-size", "8", "--output", _dir!.File("validated.zip"));
        StringAssert.Contains(output, "validation split 0.3");
        StringAssert.Matches(output, new Regex(@"epoch 1/2  .*  val loss [\d.]+ acc [\d.]+% agreement [\d.]+%"));
        StringAssert.Matches(output, new Regex(@"epoch 2/2  .*  val loss [\d.]+ acc [\d.]+% agreement [\d.]+%"));
    }

    [TestMethod]
    public void UsageAndInputErrorsAreOneLine()
    {
        StringAssert.Contains(CliHost.FailOneLine(2, "distill", "--student", "lenet5", "--data", Labelled), "--teacher");
        StringAssert.Contains(CliHost.FailOneLine(2, "distill", "--teacher", Teacher, "--data", Labelled), "--student");
        StringAssert.Contains(CliHost.FailOneLine(2, "distill", "--teacher", Teacher, "--student", "lenet5"), "--unlabeled");
        StringAssert.Contains(CliHost.FailOneLine(2, "distill", "--teacher", Teacher, "--student", "lenet5", "--data", Labelled, "--alpha", "1.5"), "--alpha");
        StringAssert.Contains(CliHost.FailOneLine(1, "distill", "--teacher", _dir!.File("none.zip"), "--student", "lenet5", "--data", Labelled), "none.zip");
        StringAssert.Contains(CliHost.FailOneLine(2, "distill", "--teacher", Teacher, "--student", "lenet6", "--data", Labelled), "did you mean lenet5");
        string notAModel = _dir.File("not-a-model.zip");
        File.WriteAllText(notAModel, "hello");
        StringAssert.Contains(CliHost.FailOneLine(1, "distill", "--teacher", notAModel, "--student", "lenet5", "--data", Labelled), "cannot be loaded");
        // A class folder the teacher does not know.
        string other = _dir.File("other");
        var random = new Random(3);
        WriteImage(Path.Combine(other, "red", "0.png"), 2, random);
        WriteImage(Path.Combine(other, "purple", "0.png"), 0, random);
        StringAssert.Contains(CliHost.FailOneLine(1, "distill", "--teacher", Teacher, "--student", "lenet5", "--data", other), "'purple'");
        var (exit, help, _) = CliHost.Run("help");
        Assert.AreEqual(0, exit);
        StringAssert.Contains(help, "distill");
    }
}
