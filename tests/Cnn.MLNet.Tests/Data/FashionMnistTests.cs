using Cnn.MLNet.Data;
using Cnn.Tests.Shared;

namespace Cnn.MLNet.Tests.Data;

[TestClass]
public sealed class FashionMnistTests
{
    [TestMethod]
    public void EmbeddedSubsetIsBalancedAndIsASubsetOfTheFullData()
    {
        var train = Cnn.Cli.Data.FashionMnistSample.Load(FashionMnistSplit.Train);
        var test = Cnn.Cli.Data.FashionMnistSample.Load(FashionMnistSplit.Test);
        Assert.AreEqual(FashionMnistSource.Embedded, train.Source);
        Assert.AreEqual(10_000, train.Count);
        Assert.AreEqual(2_000, test.Count);
        CollectionAssert.AreEqual(Enumerable.Repeat(1000, 10).ToArray(), train.CountPerClass());
        CollectionAssert.AreEqual(Enumerable.Repeat(200, 10).ToArray(), test.CountPerClass());
        CollectionAssert.AreEqual(new[] { 10_000, 28, 28 }, train.Images.Shape);
        Assert.AreEqual("Ankle boot", train.ClassNames[9]);
        Assert.AreEqual("T-shirt/top", train.ClassNames[0]);

        // Every embedded test image must be an image of the full test set with the same label.
        var full = FashionMnist.Load(FashionMnistSplit.Test, FashionMnist.DebianFolder);
        var index = new Dictionary<string, int>();
        for (int i = 0; i < full.Count; i++) index.TryAdd(Convert.ToBase64String(full.Images.Data, i * 784, 784), full.Labels.Data[i]);
        for (int i = 0; i < test.Count; i++)
        {
            Assert.IsTrue(index.TryGetValue(Convert.ToBase64String(test.Images.Data, i * 784, 784), out int label), $"embedded test[{i}] not in the full set");
            Assert.AreEqual(label, (int)test.Labels.Data[i], $"embedded test[{i}] label");
        }
    }

    [TestMethod]
    public void DebianInstallHasTheFullSetAndIsPreferred()
    {
        Assert.IsTrue(FashionMnist.IsAvailable(FashionMnist.DebianFolder),
            $"{FashionMnist.DebianFolder} is missing: install the Debian package dataset-fashion-mnist (CI does).");
        var train = FashionMnist.Load(FashionMnistSplit.Train);
        var test = FashionMnist.Load(FashionMnistSplit.Test);
        Assert.AreEqual(FashionMnistSource.Folder, train.Source);
        Assert.AreEqual(60_000, train.Count);
        Assert.AreEqual(10_000, test.Count);
        CollectionAssert.AreEqual(Enumerable.Repeat(6000, 10).ToArray(), train.CountPerClass());
        var sample = train.Samples[123];
        Assert.AreEqual(ImageSampleKind.Pixels, sample.Kind);
        Assert.AreEqual("fashion-mnist train[123]", sample.Name);
        CollectionAssert.AreEqual(train.Images.Data.AsSpan(123 * 784, 784).ToArray(), sample.Decode(1).Pixels.ToArray());
    }

    [TestMethod]
    public void AUserFolderIsReadAndAMissingOneIsAnError()
    {
        using var dir = new TempDirectory();
        var images = new IdxArray([3, 28, 28], new byte[3 * 784]);
        images.Data[784] = 200;
        IdxFile.Write(dir.File("t10k-images-idx3-ubyte"), images);
        IdxFile.Write(dir.File("t10k-labels-idx1-ubyte.gz"), new IdxArray([3], [9, 0, 4]));
        var test = FashionMnist.Load(FashionMnistSplit.Test, dir.Path);
        Assert.AreEqual(FashionMnistSource.Folder, test.Source);
        Assert.AreEqual(3, test.Count);
        Assert.AreEqual(9, test.Samples[0].Label);
        Assert.AreEqual(200, test.Samples[1].Decode(3).Pixels[0]);

        var missingTrain = Assert.ThrowsExactly<FileNotFoundException>(() => FashionMnist.Load(FashionMnistSplit.Train, dir.Path));
        StringAssert.Contains(missingTrain.Message, "train-images-idx3-ubyte");
        Assert.ThrowsExactly<DirectoryNotFoundException>(() => FashionMnist.Load(FashionMnistSplit.Train, dir.File("nope")));

        IdxFile.Write(dir.File("train-images-idx3-ubyte"), new IdxArray([2, 28, 28], new byte[2 * 784]));
        IdxFile.Write(dir.File("train-labels-idx1-ubyte"), new IdxArray([2], [1, 12]));
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => FashionMnist.Load(FashionMnistSplit.Train, dir.Path)).Message, "label 12");
    }
}
