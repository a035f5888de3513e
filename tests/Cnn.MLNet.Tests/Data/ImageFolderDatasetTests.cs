using Cnn.MLNet.Data;
using Cnn.Tests.Shared;

namespace Cnn.MLNet.Tests.Data;

[TestClass]
public sealed class ImageFolderDatasetTests
{
    private static void Touch(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, [1]);
    }

    [TestMethod]
    public void ScansClassesInOrdinalOrderRecursivelyWithImageExtensionsOnly()
    {
        using var dir = new TempDirectory();
        Touch(dir.File("dog/b.PNG"));
        Touch(dir.File("dog/a.jpg"));
        Touch(dir.File("dog/notes.txt"));
        Touch(dir.File("Cat/nested/x.webp"));
        Touch(dir.File("Cat/y.jpeg"));
        Touch(dir.File("bird/z.gif"));
        Touch(dir.File("bird/w.bmp"));
        var dataset = ImageFolderDataset.Scan(dir.Path);
        CollectionAssert.AreEqual(new[] { "Cat", "bird", "dog" }, dataset.ClassNames.ToArray()); // ordinal: upper case first, as Python's sorted()
        Assert.AreEqual(6, dataset.Count);
        var names = dataset.Samples.Select(s => Path.GetRelativePath(dir.Path, s.Path!) + ":" + s.Label).ToArray();
        CollectionAssert.AreEqual(new[] { "Cat/nested/x.webp:0", "Cat/y.jpeg:0", "bird/w.bmp:1", "bird/z.gif:1", "dog/a.jpg:2", "dog/b.PNG:2" }, names);
    }

    [TestMethod]
    public void EmptySingleClassAndMissingFoldersAreClearErrors()
    {
        using var dir = new TempDirectory();
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => ImageFolderDataset.Scan(dir.Path)).Message, "no class subfolders");
        Touch(dir.File("only/a.png"));
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => ImageFolderDataset.Scan(dir.Path)).Message, "single class folder ('only')");
        Directory.CreateDirectory(dir.File("empty"));
        Touch(dir.File("empty/readme.txt"));
        var empty = Assert.ThrowsExactly<InvalidDataException>(() => ImageFolderDataset.Scan(dir.Path));
        StringAssert.Contains(empty.Message, "'empty'");
        Assert.ThrowsExactly<DirectoryNotFoundException>(() => ImageFolderDataset.Scan(dir.File("missing")));
    }

    [TestMethod]
    public void StratifiedSplitKeepsClassProportionsAndIsSeeded()
    {
        using var dir = new TempDirectory();
        int[] perClass = [50, 20, 7, 2];
        for (int c = 0; c < perClass.Length; c++)
            for (int i = 0; i < perClass[c]; i++)
                Touch(dir.File($"class{c}/{i:D3}.png"));
        var dataset = ImageFolderDataset.Scan(dir.Path);
        var (train, validation) = dataset.Split(0.2, seed: 42);
        CollectionAssert.AreEqual(new[] { 10, 4, 1, 1 }, validation.CountPerClass()); // round(n·0.2), at least 1 per class
        CollectionAssert.AreEqual(new[] { 40, 16, 6, 1 }, train.CountPerClass());
        Assert.AreEqual(dataset.Count, train.Count + validation.Count);
        Assert.IsEmpty(train.Samples.Select(s => s.Path).Intersect(validation.Samples.Select(s => s.Path)));

        var again = dataset.Split(0.2, seed: 42).Validation.Samples.Select(s => s.Path).ToArray();
        CollectionAssert.AreEqual(validation.Samples.Select(s => s.Path).ToArray(), again);
        var other = dataset.Split(0.2, seed: 7).Validation.Samples.Select(s => s.Path).ToArray();
        CollectionAssert.AreNotEqual(again, other);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => dataset.Split(1.0, 1));
    }
}
