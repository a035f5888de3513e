using System.Text.RegularExpressions;
using Cnn.Tests.Shared;

namespace Cnn.MLNet.Tests.Cli;

/// <summary>The fine-tuning recipes on the command line: timm's and fastai's option names on <c>cnn train</c> and <c>cnn distill</c>.</summary>
[TestClass]
public sealed class RecipeCommandTests
{
    private static readonly string[] Recipe =
    [
        "--smoothing", "0.1", "--mixup", "0.4", "--cutmix", "1.0", "--mixup-prob", "0.8", "--model-ema-decay", "0.9",
        "--clip-grad", "5", "--accum-steps", "2", "--freeze-epochs", "1", "--layer-decay", "0.7",
    ];

    [TestMethod]
    public void TrainAndDistillTakeTheRecipeOptions()
    {
        using var dir = new TempDirectory();
        string folder = dir.File("colours"), model = dir.File("teacher.zip"), student = dir.File("student.zip");
        TrainEvalCommandTests.WriteColourFolder(folder, ["blue", "green", "red"], 8, seed: 3);
        string train = CliHost.Succeed(["train", "--model", "lenet5", "--data", folder, "--epochs", "1", "--batch-size", "4",
            "--image-size", "32", "--channels", "3", "--output", model, .. Recipe]);
        StringAssert.Contains(train, "1 head-only epochs first, layer decay 0.7, label smoothing 0.1, mixup 0.4, CutMix 1, weight average (decay 0.9), gradients clipped to norm 5, 2 batches per step");
        StringAssert.Matches(train, new Regex(@"epoch 2/2  loss"), "the freeze epoch comes before the epochs");
        Assert.IsTrue(File.Exists(model));

        string distill = CliHost.Succeed(["distill", "--teacher", model, "--student", "lenet5", "--data", folder, "--epochs", "1",
            "--batch-size", "4", "--output", student, .. Recipe]);
        StringAssert.Contains(distill, "mixup 0.4, CutMix 1");
        Assert.IsTrue(File.Exists(student));
    }

    [TestMethod]
    public void ConflictingOrOutOfRangeRecipeOptionsAreUsageErrors()
    {
        StringAssert.Contains(CliHost.FailOneLine(2, "train", "--lr-mult", "10", "--layer-decay", "0.7"), "give either --lr-mult F or --layer-decay F, not both");
        StringAssert.Contains(CliHost.FailOneLine(2, "train", "--smoothing", "1.5"), "option --smoothing must be a number in [0, 0.99]");
        StringAssert.Contains(CliHost.FailOneLine(2, "distill", "--teacher", "t.zip", "--student", "lenet5", "--data", "d", "--accum-steps", "0"), "option --accum-steps");
    }
}
