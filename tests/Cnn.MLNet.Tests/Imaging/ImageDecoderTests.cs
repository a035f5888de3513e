using Cnn.MLNet.Imaging;
using Cnn.Tests.Shared;
using Microsoft.ML.Data;

namespace Cnn.MLNet.Tests.Imaging;

/// <summary>Decoding and color conversion checked against PIL's <c>convert("RGB")</c> / <c>convert("L")</c> on files PIL wrote.</summary>
[TestClass]
public sealed class ImageDecoderTests
{
    public TestContext TestContext { get; set; } = null!;

    private const string Script = """
import sys
import numpy as np
from PIL import Image

out = sys.argv[1]
rng = np.random.default_rng(7)
h, w = 23, 37
rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
alpha = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
alpha[0, :] = 0
alpha[1, :] = 255
images = {
    "rgb": Image.fromarray(rgb, "RGB"),
    "l": Image.fromarray(rgb[:, :, 0], "L"),
    "la": Image.merge("LA", [Image.fromarray(rgb[:, :, 1], "L"), Image.fromarray(alpha, "L")]),
    "rgba": Image.fromarray(np.dstack([rgb, alpha]), "RGBA"),
    "p": Image.fromarray(rgb, "RGB").quantize(colors=50),
}
ptrans = Image.fromarray(rgb, "RGB").quantize(colors=16)
ptrans.info["transparency"] = 3
images["ptrans"] = ptrans

def save_expected(name, img):
    np.asarray(img.convert("RGB"), dtype=np.uint8).tofile(f"{out}/{name}.rgb")
    np.asarray(img.convert("L"), dtype=np.uint8).tofile(f"{out}/{name}.l")

for name, img in images.items():
    img.save(f"{out}/{name}.png")
    if name == "ptrans":
        img.save(f"{out}/{name}.png", transparency=3)
    save_expected(name, Image.open(f"{out}/{name}.png"))

# Transparency blended on white / black with PIL's paste(mask=alpha).
rgba = Image.open(f"{out}/rgba.png")
for name, color in (("white", (255, 255, 255)), ("black", (0, 0, 0))):
    bg = Image.new("RGB", rgba.size, color)
    bg.paste(rgba.convert("RGB"), mask=rgba.getchannel("A"))
    np.asarray(bg, dtype=np.uint8).tofile(f"{out}/rgba_{name}.rgb")

# 16-bit gray: expected is the documented high-byte reduction (v >> 8).
v16 = rng.integers(0, 65536, size=(h, w), dtype=np.uint16)
Image.fromarray(v16.astype(np.int32), "I").save(f"{out}/i16.png", bits=16)
assert Image.open(f"{out}/i16.png").mode in ("I", "I;16"), Image.open(f"{out}/i16.png").mode
np.asarray(Image.open(f"{out}/i16.png"), dtype=np.int64).astype(np.uint16).tofile(f"{out}/i16.u16")

# Other containers, lossless: BMP, GIF (palette), WebP lossless.
images["rgb"].save(f"{out}/rgb.bmp")
images["p"].save(f"{out}/p.gif")
images["rgb"].save(f"{out}/rgb.webp", lossless=True)
# JPEG: decoders may differ by IDCT/upsampling rounding.
images["rgb"].save(f"{out}/rgb.jpg", quality=92)
np.asarray(Image.open(f"{out}/rgb.jpg").convert("RGB"), dtype=np.uint8).tofile(f"{out}/jpg.rgb")
""";

    private static TempDirectory _dir = null!;

    [ClassInitialize]
    public static void Generate(TestContext _)
    {
        _dir = new TempDirectory();
        ReferencePython.Run(Script, _dir.Path);
    }

    [ClassCleanup]
    public static void Cleanup() => _dir?.Dispose();

    [TestMethod]
    [DataRow("rgb")]
    [DataRow("l")]
    [DataRow("la")]
    [DataRow("rgba")]
    [DataRow("p")]
    [DataRow("ptrans")]
    public void PngModesConvertLikePil(string name)
    {
        string file = _dir.File(name + ".png");
        var rgb = ImageDecoder.DecodeFile(file, 3);
        Assert.AreEqual(37, rgb.Width);
        Assert.AreEqual(23, rgb.Height);
        Assert.AreEqual(3, rgb.Channels);
        AssertBytes(File.ReadAllBytes(_dir.File(name + ".rgb")), rgb.Pixels, $"{name} → RGB");

        var gray = ImageDecoder.Decode(File.ReadAllBytes(file), 1, name);
        Assert.AreEqual(1, gray.Channels);
        AssertBytes(File.ReadAllBytes(_dir.File(name + ".l")), gray.Pixels, $"{name} → L");
    }

    [TestMethod]
    [DataRow(AlphaHandling.CompositeOnWhite, "rgba_white")]
    [DataRow(AlphaHandling.CompositeOnBlack, "rgba_black")]
    public void AlphaIsCompositedLikePilPaste(AlphaHandling alpha, string expected)
    {
        var image = ImageDecoder.DecodeFile(_dir.File("rgba.png"), 3, alpha);
        AssertBytes(File.ReadAllBytes(_dir.File(expected + ".rgb")), image.Pixels, expected);
    }

    [TestMethod]
    public void SixteenBitGrayKeepsTheHighByte()
    {
        byte[] raw = File.ReadAllBytes(_dir.File("i16.u16"));
        var expected = new byte[raw.Length / 2];
        for (int i = 0; i < expected.Length; i++) expected[i] = (byte)(BitConverter.ToUInt16(raw, 2 * i) >> 8);
        var gray = ImageDecoder.DecodeFile(_dir.File("i16.png"), 1);
        AssertBytes(expected, gray.Pixels, "I;16 → L");
        var rgb = ImageDecoder.DecodeFile(_dir.File("i16.png"), 3);
        for (int i = 0; i < expected.Length; i++)
            Assert.IsTrue(rgb.Pixels[3 * i] == expected[i] && rgb.Pixels[3 * i + 1] == expected[i] && rgb.Pixels[3 * i + 2] == expected[i], $"pixel {i}");
    }

    [TestMethod]
    [DataRow("rgb.bmp", "rgb")]
    [DataRow("p.gif", "p")]
    [DataRow("rgb.webp", "rgb")]
    public void LosslessContainersDecodeExactly(string file, string expected)
    {
        var image = ImageDecoder.DecodeFile(_dir.File(file), 3);
        AssertBytes(File.ReadAllBytes(_dir.File(expected + ".rgb")), image.Pixels, file);
    }

    [TestMethod]
    public void JpegIsCloseToPil()
    {
        var image = ImageDecoder.DecodeFile(_dir.File("rgb.jpg"), 3);
        byte[] expected = File.ReadAllBytes(_dir.File("jpg.rgb"));
        Assert.HasCount(expected.Length, image.Pixels.ToArray());
        int max = 0;
        for (int i = 0; i < expected.Length; i++) max = Math.Max(max, Math.Abs(expected[i] - image.Pixels[i]));
        TestContext.WriteLine($"JPEG max |Skia − PIL| = {max}");
        Assert.IsLessThanOrEqualTo(3, max, "JPEG decoders should agree within IDCT rounding");
    }

    [TestMethod]
    public void MLImageMatchesFileDecoding()
    {
        using var ml = MLImage.CreateFromFile(_dir.File("rgb.png"));
        var fromMl = ImageDecoder.FromMLImage(ml, 3, "row 0");
        var fromFile = ImageDecoder.DecodeFile(_dir.File("rgb.png"), 3);
        AssertBytes(fromFile.Pixels.ToArray(), fromMl.Pixels, "MLImage vs file");
        var gray = ImageDecoder.FromMLImage(ml, 1, "row 0");
        AssertBytes(File.ReadAllBytes(_dir.File("rgb.l")), gray.Pixels, "MLImage → L");
    }

    [TestMethod]
    public void VBufferOfEncodedBytesDecodes()
    {
        byte[] bytes = File.ReadAllBytes(_dir.File("rgb.png"));
        var image = ImageDecoder.Decode(new VBuffer<byte>(bytes.Length, bytes), 3, "row 3");
        AssertBytes(File.ReadAllBytes(_dir.File("rgb.rgb")), image.Pixels, "VBuffer");
    }

    [TestMethod]
    public void CorruptTruncatedEmptyAndMissingFilesNameTheFile()
    {
        byte[] png = File.ReadAllBytes(_dir.File("rgb.png"));
        string truncated = _dir.File("truncated.png");
        File.WriteAllBytes(truncated, png[..(png.Length / 2)]);
        string garbage = _dir.File("garbage.jpg");
        File.WriteAllBytes(garbage, [.. Enumerable.Range(0, 500).Select(i => (byte)(i * 37 % 251))]);
        string empty = _dir.File("empty.png");
        File.WriteAllBytes(empty, []);
        string missing = _dir.File("missing.png");

        foreach (var (path, reason) in new[] { (truncated, "truncated"), (garbage, "format"), (empty, "empty"), (missing, "does not exist") })
        {
            var ex = Assert.ThrowsExactly<ImageDecodeException>(() => ImageDecoder.DecodeFile(path, 3));
            StringAssert.Contains(ex.Message, path);
            StringAssert.Contains(ex.Message, reason);
            Assert.AreEqual(path, ex.Source);
        }
        var fromBytes = Assert.ThrowsExactly<ImageDecodeException>(() => ImageDecoder.Decode(png.AsSpan(0, 100), 3, "row 42"));
        StringAssert.Contains(fromBytes.Message, "row 42");
    }

    private static void AssertBytes(byte[] expected, ReadOnlySpan<byte> actual, string what)
    {
        Assert.AreEqual(expected.Length, actual.Length, $"{what}: length");
        for (int i = 0; i < expected.Length; i++)
            if (expected[i] != actual[i])
                Assert.Fail($"{what}: first difference at byte {i}: expected {expected[i]}, got {actual[i]}");
    }
}
