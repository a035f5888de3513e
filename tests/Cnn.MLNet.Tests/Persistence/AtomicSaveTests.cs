using Cnn.MLNet.Persistence;
using Cnn.MLNet.Tests.Cli;
using Cnn.MLNet.Tests.Training;
using Cnn.Tests.Shared;
using Microsoft.ML;

namespace Cnn.MLNet.Tests.Persistence;

/// <summary>Saving never damages or silently replaces what is there, and cleans up after saves that were killed.</summary>
[TestClass]
public sealed class AtomicSaveTests
{
    private static (ITransformer Model, IDataView Data, MLContext Ml) Fitted()
    {
        var ml = new MLContext(seed: 1);
        var raw = FashionMnistFixture.View(ml, train: true, perClass: 2, classes: 2);
        var options = new CnnTrainerOptions { Model = new() { InChannels = 1, ImageSize = 32 }, CropPct = 1.0, Epochs = 1, BatchSize = 4, Augment = false, Precision = CnnPrecision.Float32, MemoryFormat = CnnMemoryFormat.Contiguous, InferenceEngine = CnnInferenceEngine.TorchSharp };
        return (ml.Transforms.Conversion.MapValueToKey("Label").Append(CnnTrainer.LeNet5(options)).Fit(raw), raw, ml);
    }

    [TestMethod]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // read-only by Unix file mode
    public void LeftoversOfAKilledSaveAreRemovedAndReadOnlyFilesKept()
    {
        var (model, data, ml) = Fitted();
        using var dir = new TempDirectory();
        string path = dir.File("model.zip");
        // What a save killed mid-write leaves: a temporary file named after a process that no longer runs (pid 2^22 + 1 is above
        // Linux's pid_max), and one of this very process, which must stay (a save in progress).
        string dead = $"{path}.4194305.{Guid.NewGuid():N}.tmp", alive = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        File.WriteAllBytes(dead, []);
        File.WriteAllBytes(alive, []);
        CnnPipelineFile.Save(ml, model, data.Schema, path);
        Assert.IsFalse(File.Exists(dead), "the killed save's temporary file is removed");
        Assert.IsTrue(File.Exists(alive), "a running process's temporary file is left alone");
        Assert.AreEqual(0, Directory.GetFiles(dir.Path, "model.zip.*.tmp").Count(f => f != alive), "no temporary file of this save remains");

        // A read-only file is not replaced, byte for byte, unless asked.
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        byte[] before = File.ReadAllBytes(path);
        var refused = Assert.ThrowsExactly<IOException>(() => CnnPipelineFile.Save(ml, model, data.Schema, path));
        StringAssert.Contains(refused.Message, "read-only");
        CollectionAssert.AreEqual(before, File.ReadAllBytes(path));
        CnnPipelineFile.Save(ml, model, data.Schema, path, overwriteReadOnly: true);
        Assert.IsNotNull(CnnPipelineFile.Load(new MLContext(), path, out _));

        // The command line refuses before training, one line, and replaces with --force.
        File.SetUnixFileMode(path, UnixFileMode.UserRead);
        StringAssert.Contains(CliHost.FailOneLine(2, "train", "-m", "lenet5", "--limit", "20", "-e", "1", "-o", path), "read-only file");
        CliHost.Succeed("train", "-m", "lenet5", "--limit", "20", "-e", "1", "-o", path, "--force");
        foreach (var stage in CnnPipelineFile.Stages(model).OfType<IDisposable>()) stage.Dispose();
    }
}
