using System.Buffers.Binary;
using System.IO.Compression;
using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using Cnn.MLNet.Persistence;
using Microsoft.ML;
using SkiaSharp;

namespace Cnn.MLNet.Tests.Fuzzing;

/// <summary>Seed files of the image and IDX formats, shared by the mutation tests and the AFL++ harnesses (fuzz/Cnn.Fuzz links this file).</summary>
internal static class FuzzSeeds
{
    /// <summary>PNG (RGBA with translucency, gray), JPEG, WebP (lossy, lossless), BMP (24-bit) and GIF (palette) files, all small.</summary>
    public static List<byte[]> Images()
    {
        var random = new Random(5);
        var seeds = new List<byte[]>();
        using (var bitmap = new SKBitmap(new SKImageInfo(19, 13, SKColorType.Rgba8888, SKAlphaType.Unpremul)))
        {
            for (int y = 0; y < bitmap.Height; y++)
                for (int x = 0; x < bitmap.Width; x++)
                    bitmap.SetPixel(x, y, new SKColor((byte)random.Next(256), (byte)(x * 13), (byte)(y * 19), (byte)(x < 3 ? 128 : 255)));
            using var image = SKImage.FromBitmap(bitmap);
            foreach (var (format, quality) in new[] { (SKEncodedImageFormat.Png, 100), (SKEncodedImageFormat.Jpeg, 85), (SKEncodedImageFormat.Webp, 80), (SKEncodedImageFormat.Webp, 100) })
                using (var data = image.Encode(format, quality)) seeds.Add(data.ToArray());
        }
        var gray = new byte[9 * 7];
        random.NextBytes(gray);
        seeds.Add(ImageEncoder.EncodePng(gray, 9, 7, 1));
        seeds.Add(Bmp24(5, 3, random));
        // The smallest GIF89a: 1×1, a two-colour global palette, a graphic control extension and LZW data.
        seeds.Add(Convert.FromHexString("47494638396101000100800000000000FFFFFF21F90401000000002C00000000010001000002024401003B"));
        return seeds;
    }

    private static byte[] Bmp24(int width, int height, Random random)
    {
        int row = (width * 3 + 3) & ~3, size = 54 + row * height;
        var bmp = new byte[size];
        "BM"u8.CopyTo(bmp);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(2), size);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(10), 54);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(18), width);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(22), height);
        BinaryPrimitives.WriteInt16LittleEndian(bmp.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(bmp.AsSpan(28), 24);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(34), row * height);
        random.NextBytes(bmp.AsSpan(54));
        return bmp;
    }

    /// <summary>The real Fashion-MNIST test labels (gzip, 10000 items) where the data set is installed, and small raw and gzip arrays.</summary>
    public static List<byte[]> Idx()
    {
        var seeds = new List<byte[]>();
        string labels = Path.Combine(FashionMnist.DebianFolder, "t10k-labels-idx1-ubyte.gz");
        if (File.Exists(labels)) seeds.Add(File.ReadAllBytes(labels));
        var data = new byte[6 * 5 * 4];
        new Random(2).NextBytes(data);
        foreach (bool gzip in new[] { false, true })
        {
            using var stream = new MemoryStream();
            using (Stream target = gzip ? new GZipStream(stream, CompressionLevel.SmallestSize, leaveOpen: true) : stream)
                IdxFile.Write(target, new IdxArray([6, 5, 4], data));
            seeds.Add(stream.ToArray());
        }
        return seeds;
    }

    /// <summary>A real pipeline file: Fashion-MNIST LeNet-5 (two classes) fitted for one epoch on 4 images and saved with <see cref="CnnPipelineFile.Save"/>.</summary>
    public static byte[] Pipeline()
    {
        var ml = new MLContext(seed: 1);
        var source = Cnn.Cli.Data.FashionMnistSample.Load(FashionMnistSplit.Train);
        var raw = ImageDataViews.ToDataView(ml, new ImageDataset(source.Samples.Where(s => s.Label < 2).ToList(), source.ClassNames).TakePerClass(2));
        var options = new CnnTrainerOptions { Model = new() { InChannels = 1, ImageSize = 32 }, CropPct = 1.0, Epochs = 1, BatchSize = 4, Augment = false };
        var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(CnnTrainer.LeNet5(options)).Fit(raw);
        string path = Path.Combine(Path.GetTempPath(), $"cnn-seed-{Guid.NewGuid():N}.zip");
        try
        {
            CnnPipelineFile.Save(ml, model, raw.Schema, path);
            return File.ReadAllBytes(path);
        }
        finally
        {
            foreach (var stage in CnnPipelineFile.Stages(model)) (stage as IDisposable)?.Dispose();
            File.Delete(path);
        }
    }
}
