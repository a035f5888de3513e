using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using Cnn.Tests.Shared;

namespace Cnn.MLNet.Tests.Fuzzing;

/// <summary>
/// Bounded, seeded mutation tests of the image decoder (PNG, JPEG, WebP, GIF, BMP through SkiaSharp) and the IDX reader: every
/// mutant is decoded or refused with the documented exception (<see cref="ImageDecodeException"/>, <see cref="InvalidDataException"/>)
/// within a per-case timeout, allocating no more than its length justifies; a header claiming a 100000×100000 image or a
/// 2-billion-item IDX array is refused before the buffer exists.
/// </summary>
[TestClass]
public sealed class ImageAndIdxMutationTests
{
    private const long Slack = 1L << 20;

    /// <summary>What one decode may allocate: the RGBA scratch (4 bytes a pixel) and the RGB result (3), for the most pixels the length allows.</summary>
    private static long ImageBound(long length) => 8 * ImageDecoder.MaxPixels(length) + Slack;

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public void Images_MutantsDecodeOrAreRefused()
    {
        int channels = 1;
        new MutationFuzz
        {
            Format = "image",
            Seeds = FuzzSeeds.Images(),
            Cases = 50000,
            Parse = bytes => ImageDecoder.Decode(bytes, channels = 4 - channels, "case"), // alternately RGB and gray
            IsDocumented = ex => ex is ImageDecodeException,
            ManagedBound = ImageBound,
        }.Run();
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public void Idx_MutantsReadOrAreRefused()
    {
        var seeds = FuzzSeeds.Idx();
        new MutationFuzz
        {
            Format = "idx",
            Seeds = seeds,
            Cases = 30000,
            Parse = bytes => IdxFile.Read(new MemoryStream(bytes), "case"),
            IsDocumented = ex => ex is InvalidDataException,
            // At most the data that is there, twice over while the buffer grows; gzip expands at most 1032:1.
            ManagedBound = n => 3 * 1032 * n + Slack,
        }.Run();
    }

    // ---- Regression tests: headers whose claims were allocated before they were checked ----

    [TestMethod]
    [DataRow(100_000, 100_000)]
    [DataRow(10_000, 10_000)] // 400 MB of RGBA, which fits an array, from a 100-byte file
    [DataRow(2_100, 2_100)] // above the small-image allowance for its length
    public void Png_AHeaderClaimingAHugeImageIsRefusedBeforeAllocating(int width, int height)
    {
        var gray = new byte[4 * 4];
        byte[] png = ImageEncoder.EncodePng(gray, 4, 4, 1);
        // IHDR follows the 8-byte signature: length, "IHDR", width, height, …, then the CRC of type and data.
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(16), width);
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(20), height);
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(29), Crc32(png.AsSpan(12, 17)));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.ThrowsExactly<ImageDecodeException>(() => ImageDecoder.Decode(png, 3, "claim.png"));
        Assert.IsLessThan(Slack, GC.GetAllocatedBytesForCurrentThread() - before);
        StringAssert.Contains(error.Message, "claim.png");
        StringAssert.Contains(error.Message, $"{width}x{height}");
    }

    [TestMethod]
    public void Png_ARealSolidImageBeyondTheSmallAllowanceStillDecodes()
    {
        // 9 megapixels of one gray compress about 1000:1, as deflate allows: the length-based limit must not refuse it.
        var gray = new byte[3000 * 3000];
        Array.Fill(gray, (byte)77);
        byte[] png = ImageEncoder.EncodePng(gray, 3000, 3000, 1);
        Assert.IsGreaterThan(ImageDecoder.SmallImagePixels, 3000L * 3000);
        var image = ImageDecoder.Decode(png, 1, "solid.png");
        Assert.AreEqual(3000, image.Width);
        Assert.AreEqual(77, image.Pixels[^1]);
    }

    [TestMethod]
    public void Idx_AHeaderClaimingTwoBillionItemsIsRefusedBeforeAllocating()
    {
        var bytes = new byte[8 + 16];
        bytes[2] = 0x08;
        bytes[3] = 1;
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), 2_000_000_000);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.ThrowsExactly<InvalidDataException>(() => IdxFile.Read(new MemoryStream(bytes), "claim.idx1"));
        Assert.IsLessThan(Slack, GC.GetAllocatedBytesForCurrentThread() - before);
        StringAssert.Contains(error.Message, "only 16 are present");
    }

    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }
}
