using System.Text.RegularExpressions;
using Cnn.Cli.Inference;
using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using Cnn.Tests.Shared;

namespace Cnn.MLNet.Tests.Cli;

/// <summary>The command line behaves as the ecosystem's do, and checks what it can before any long work.</summary>
[TestClass]
public sealed class CliConventionsTests
{
    [TestMethod]
    public void HelpVersionShortFlagsAndUnknownOptions()
    {
        // An unknown option is named as such, also as the last argument (it used to be "needs a value").
        StringAssert.Contains(CliHost.FailOneLine(2, "summary", "resnet18", "--json"), "unknown option '--json'");
        StringAssert.Contains(CliHost.FailOneLine(2, "eval", "--model-file", "m.zip", "stray"), "unexpected argument 'stray'");
        StringAssert.Contains(CliHost.FailOneLine(2, "predict", "--model"), "--model");

        foreach (var args in new[] { new[] { "train", "-h" }, new[] { "train", "--help" }, new[] { "help", "train" } })
        {
            var (exit, output, error) = CliHost.Run(args);
            Assert.AreEqual(0, exit, string.Join(' ', args) + ": " + error);
            StringAssert.StartsWith(output, "usage: cnn train", string.Join(' ', args));
            StringAssert.Contains(output, "-m, --model <name>");
            StringAssert.Contains(output, "-h, --help");
        }
        var (code, version, _) = CliHost.Run("--version");
        Assert.AreEqual(0, code);
        StringAssert.Matches(version, new Regex(@"^cnn \d+\.\d+"));
        var (unknown, _, message) = CliHost.Run("trian");
        Assert.AreEqual(2, unknown);
        StringAssert.Contains(message, "Did you mean 'train'");
        var (badHelp, _, helpError) = CliHost.Run("help", "nope");
        Assert.AreEqual(2, badHelp);
        StringAssert.Contains(helpError, "unknown command 'nope'");

        // Short flags and --name=value.
        string summary = CliHost.Succeed("summary", "lenet5", "--input=1x32x32");
        StringAssert.Contains(summary, "lenet5  input 1x32x32");
    }

    [TestMethod]
    public void NoDotNetExceptionTextReachesTheUser()
    {
        Assert.AreEqual("stage 9 is out of range", Cnn.Cli.UserMessage.Of(new ArgumentOutOfRangeException("stage", 9, "stage 9 is out of range")));
        Assert.AreEqual("bad name", Cnn.Cli.UserMessage.Of(new ArgumentException("bad name", "name")));
    }

    [TestMethod]
    public void OutputAndFreezeProblemsFailBeforeTraining()
    {
        using var dir = new TempDirectory();
        Directory.CreateDirectory(dir.File("a-folder"));
        File.WriteAllText(dir.File("a-file"), "x");
        StringAssert.Contains(CliHost.FailOneLine(2, "train", "--limit", "20", "--output", dir.File("a-folder")), "is a folder");
        StringAssert.Contains(CliHost.FailOneLine(2, "train", "--limit", "20", "--output", ""), "empty");
        StringAssert.Contains(CliHost.FailOneLine(2, "train", "--limit", "20", "--output", Path.Combine(dir.File("a-file"), "m.zip")), "which is a file");
        StringAssert.Contains(CliHost.FailOneLine(2, "distill", "--teacher", "t.zip", "--student", "lenet5", "--data", "d", "--output", dir.File("a-folder")), "is a folder");

        // A freeze stage the model does not have: one line naming the model's stages, before any epoch, no .NET decorations.
        string weights = dir.File("w.safetensors");
        using (var model = Cnn.Backbones.Models.ModelRegistry.Create("resnet18", new() { NumClasses = 10, InChannels = 1 }))
        using (var state = Cnn.Backbones.Weights.StateDict.FromModule(model))
            Cnn.Backbones.Weights.SafeTensors.Write(weights, state);
        var (exit, output, error) = CliHost.Run("train", "--limit", "20", "--epochs", "1", "--weights", weights, "--freeze", "9", "--output", dir.File("m.zip"));
        Assert.AreEqual(1, exit, error);
        StringAssert.Contains(error, "FreezeUpToStage 9 does not exist in this model: its stages are 0 = stem");
        Assert.IsFalse(error.Contains("(Parameter", StringComparison.Ordinal) || error.Contains("Actual value", StringComparison.Ordinal), error);
        Assert.IsFalse(output.Contains("epoch 1/1", StringComparison.Ordinal), "no epoch ran: " + output);
        Assert.IsFalse(File.Exists(dir.File("m.zip")));
    }

    /// <summary>Classes keep Fashion-MNIST's own label order whatever subset <c>--limit</c> samples; predict's indices are those labels.</summary>
    [TestMethod]
    public void FashionMnistClassesKeepTheDatasetsLabelOrder()
    {
        using var dir = new TempDirectory();
        foreach (var (limit, file) in new[] { ("40", "a.zip"), ("120", "b.zip") })
        {
            string output = CliHost.Succeed("train", "-m", "lenet5", "--limit", limit, "-e", "1", "-b", "16", "-o", dir.File(file));
            StringAssert.Matches(output, new Regex(@"done in \d+\.\d (s|min)"));
            using var model = PipelineModel.Load(dir.File(file));
            CollectionAssert.AreEqual(FashionMnist.ClassNames.ToList(), model.ClassNames.ToList(), $"--limit {limit}");
        }
        // An ankle boot (dataset label 9) through predict --json: every index printed is the dataset's label of its class name.
        var boot = Cnn.Cli.Data.FashionMnistSample.Load(FashionMnistSplit.Test).Samples.First(s => s.Label == 9);
        string png = dir.File("boot.png");
        File.WriteAllBytes(png, ImageDataViews.Encode(boot));
        var line = CliHost.JsonLines(CliHost.Succeed("predict", "--model-file", dir.File("b.zip"), "--json", "--top", "10", png)).Single();
        foreach (var entry in line.GetProperty("top").EnumerateArray())
            Assert.AreEqual(FashionMnist.ClassNames[entry.GetProperty("index").GetInt32()], entry.GetProperty("label").GetString());
    }

    /// <summary>A corrupt image in a training folder is named by its path; <c>--skip-corrupt</c> skips it and says how many were skipped.</summary>
    [TestMethod]
    public void CorruptImagesAreNamedOrSkipped()
    {
        using var dir = new TempDirectory();
        var random = new Random(3);
        foreach (var name in new[] { "a", "b" })
        {
            Directory.CreateDirectory(dir.File(Path.Combine("data", name)));
            for (int i = 0; i < 6; i++)
            {
                var pixels = new byte[20 * 20 * 3];
                random.NextBytes(pixels);
                File.WriteAllBytes(dir.File(Path.Combine("data", name, $"{i}.png")), ImageEncoder.EncodePng(pixels, 20, 20, 3));
            }
        }
        string corrupt = dir.File(Path.Combine("data", "b", "broken.png"));
        File.WriteAllBytes(corrupt, [0x89, 0x50, 0x4E, 0x47, 1, 2, 3]);
        string[] common = ["train", "-m", "lenet5", "--data", dir.File("data"), "-e", "1", "-b", "4", "--val-split", "0"];
        string error = CliHost.FailOneLine(1, [.. common, "-o", dir.File("m.zip")]);
        StringAssert.Contains(error, corrupt);
        string output = CliHost.Succeed([.. common, "--skip-corrupt", "-o", dir.File("m.zip")]);
        StringAssert.Contains(output, "(1 corrupt images skipped)");
        StringAssert.Contains(output, "lenet5, 3 channel(s), image size 32,", "the model's own input size is named (it used to say \"per model\")");
    }

    [TestMethod]
    public void PredictWithoutWeightsWarnsThatTheyAreRandom()
    {
        using var dir = new TempDirectory();
        var pixels = new byte[32 * 32 * 3];
        string png = dir.File("x.png");
        File.WriteAllBytes(png, ImageEncoder.EncodePng(pixels, 32, 32, 3));
        var (exit, _, error) = CliHost.Run("predict", "-m", "lenet5", png);
        Assert.AreEqual(0, exit, error);
        StringAssert.Contains(error, "no --weights given: lenet5 has random weights");
    }

    [TestMethod]
    public void ModelsColumnsLineUp()
    {
        var lines = CliHost.Succeed("models").Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => Regex.IsMatch(l, @"\dx\d+x\d+")).ToList();
        Assert.IsTrue(lines.Any(l => l.StartsWith("efficientnet_b0", StringComparison.Ordinal)));
        var inputColumns = lines.Select(l => Regex.Match(l, @" \d+x\d+x\d+ ").Index).Distinct().ToList();
        Assert.HasCount(1, inputColumns, "every row's input column starts at the same place:\n" + string.Join("\n", lines.Take(5)));
        // The published weights and timm's names of each architecture, from the registry.
        foreach (var definition in Cnn.Backbones.Models.ModelRegistry.List().Select(m => Cnn.Backbones.Models.ModelRegistry.GetDefinition(m.Name)))
        {
            string line = lines.Single(l => l.StartsWith(definition.Name + " ", StringComparison.Ordinal));
            foreach (string timm in definition.TimmNames) StringAssert.Contains(line, timm, definition.Name);
            StringAssert.Contains(line + " ", $" {definition.Weights.Count} ", definition.Name);
        }
    }
}
