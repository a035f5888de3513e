using System.IO.Compression;
using Cnn.MLNet.Data;
using Cnn.Tests.Shared;

namespace Cnn.MLNet.Tests.Data;

[TestClass]
public sealed class IdxFileTests
{
    [TestMethod]
    [DataRow("images.idx3", false)]
    [DataRow("images.idx3.gz", true)]
    public void RoundTripsRawAndGzip(string name, bool gzip)
    {
        using var dir = new TempDirectory();
        var data = new byte[5 * 4 * 3];
        new Random(1).NextBytes(data);
        var array = new IdxArray([5, 4, 3], data);
        string path = dir.File(name);
        IdxFile.Write(path, array);
        byte[] head = File.ReadAllBytes(path)[..2];
        Assert.AreEqual(gzip, head[0] == 0x1f && head[1] == 0x8b, "gzip chosen from the extension");
        var back = IdxFile.Read(path);
        CollectionAssert.AreEqual(array.Shape, back.Shape);
        CollectionAssert.AreEqual(array.Data, back.Data);
        Assert.AreEqual(5, back.Count);
        Assert.AreEqual(12, back.ItemLength);
    }

    [TestMethod]
    public void MatchesNumpyLayoutOfTheFashionMnistLabels()
    {
        // The header must decode to the same count Python reads; data is compared byte for byte.
        const string script = """
import gzip, struct, sys
data = gzip.open(sys.argv[1]).read()
n = struct.unpack(">i", data[4:8])[0]
print(n, sum(data[8:]), data[8], data[8 + n - 1])
""";
        string file = Path.Combine(FashionMnist.DebianFolder, "t10k-labels-idx1-ubyte.gz");
        Assert.IsTrue(File.Exists(file), $"{file} is missing: install the Debian package dataset-fashion-mnist.");
        var labels = IdxFile.Read(file);
        string[] expected = ReferencePython.Run(script, file).Split(' ', StringSplitOptions.TrimEntries);
        Assert.AreEqual(int.Parse(expected[0]), labels.Count);
        Assert.AreEqual(long.Parse(expected[1]), labels.Data.Sum(b => (long)b));
        Assert.AreEqual(byte.Parse(expected[2]), labels.Data[0]);
        Assert.AreEqual(byte.Parse(expected[3]), labels.Data[^1]);
    }

    [TestMethod]
    public void BadMagicTruncationTrailingBytesAndTypesAreReported()
    {
        using var dir = new TempDirectory();
        string bad = dir.File("bad.idx");
        File.WriteAllBytes(bad, [0x50, 0x4B, 0x03, 0x04, 0, 0, 0, 1, 9]);
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => IdxFile.Read(bad));
        StringAssert.Contains(ex.Message, "bad magic");
        StringAssert.Contains(ex.Message, bad);

        string truncated = dir.File("short.idx");
        File.WriteAllBytes(truncated, [0, 0, 8, 1, 0, 0, 0, 10, 1, 2, 3]);
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => IdxFile.Read(truncated)).Message, "needs 10 data bytes but only 3");

        string trailing = dir.File("long.idx");
        File.WriteAllBytes(trailing, [0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3]);
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => IdxFile.Read(trailing)).Message, "trailing");

        string floats = dir.File("float.idx");
        File.WriteAllBytes(floats, [0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0]);
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => IdxFile.Read(floats)).Message, "float32");

        string brokenGzip = dir.File("broken.idx.gz");
        using (var file = File.Create(brokenGzip))
        using (var zip = new GZipStream(file, CompressionLevel.Fastest))
            zip.Write(new byte[] { 0, 0, 8, 1, 0, 0, 0, 200 });
        byte[] bytes = File.ReadAllBytes(brokenGzip);
        File.WriteAllBytes(brokenGzip, bytes[..(bytes.Length - 6)]);
        var gz = Assert.ThrowsExactly<InvalidDataException>(() => IdxFile.Read(brokenGzip));
        StringAssert.Contains(gz.Message, brokenGzip);

        Assert.ThrowsExactly<FileNotFoundException>(() => IdxFile.Read(dir.File("missing.idx")));
        Assert.ThrowsExactly<ArgumentException>(() => new IdxArray([2, 2], new byte[3]));
    }
}
