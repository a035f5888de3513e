using System.Globalization;
using System.Text.Json;
using Cnn.MLNet.Imaging;
using Cnn.Tests.Shared;

namespace Cnn.MLNet.Tests.Imaging;

/// <summary>Compares <see cref="ImagePreprocessor"/> with torchvision transforms applied by Python to the same PNG files.</summary>
[TestClass]
public sealed class PreprocessParityTests
{
    public TestContext TestContext { get; set; } = null!;

    /// <summary>Writes the test images with PIL (seeded noise on gradients) and runs torchvision on each case.</summary>
    private const string Script = """
import json, math, sys
import numpy as np
import torch
from PIL import Image
import torchvision.transforms as T
import torchvision.transforms.functional as F

out = sys.argv[1]
cases = json.loads(open(sys.argv[2]).read())
modes = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC, "nearest": T.InterpolationMode.NEAREST}
for i, c in enumerate(cases):
    rng = np.random.default_rng(1000 + i)
    w, h = c["imageWidth"], c["imageHeight"]
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255.0 / max(w - 1, 1), yy * 255.0 / max(h - 1, 1), (xx + yy) * 127.0 / max(w + h - 2, 1)], axis=-1)
    pixels = np.clip(base + rng.normal(0, c["noise"], size=(h, w, 3)), 0, 255).astype(np.uint8)
    path = f"{out}/case{i}.png"
    img = Image.fromarray(pixels, "RGB")
    if c["channels"] == 1:
        img = img.convert("L")
    img.save(path)
    img = Image.open(path).convert("RGB" if c["channels"] == 3 else "L")
    mode = modes[c["interpolation"]]
    H, W, pct = c["height"], c["width"], c["cropPct"]
    norm = [T.ToTensor(), T.Normalize(c["mean"], c["std"])]
    if c.get("crop"):
        top, left, ch, cw = c["crop"]
        x = F.resized_crop(img, top, left, ch, cw, [H, W], mode)
        if c["flip"]:
            x = F.hflip(x)
        t = T.Compose(norm)(x)
    else:
        resize = int(H / pct) if H == W else (math.floor(H / pct), math.floor(W / pct))
        t = T.Compose([T.Resize(resize, interpolation=mode), T.CenterCrop((H, W))] + norm)(img)
    t.numpy().astype("<f4").tofile(f"{out}/case{i}.f32")
""";

    private sealed record Case(int ImageWidth, int ImageHeight, int Height, int Width, double CropPct, string Interpolation,
        int Channels = 3, double Noise = 40, float[]? Mean = null, float[]? Std = null, int[]? Crop = null, bool Flip = false)
    {
        public float[] MeanOrDefault => Mean ?? (Channels == 3 ? [.. PreprocessOptions.ImageNetMean] : [0.5f]);
        public float[] StdOrDefault => Std ?? (Channels == 3 ? [.. PreprocessOptions.ImageNetStd] : [0.25f]);
    }

    private static readonly Case[] Cases =
    [
        new(640, 480, 224, 224, 0.875, "bilinear"),          // 0 downscale to 298x256, crop 224
        new(640, 480, 224, 224, 0.875, "bicubic"),           // 1
        new(50, 37, 64, 64, 0.875, "bilinear"),              // 2 upscale
        new(50, 37, 64, 64, 0.875, "bicubic"),               // 3
        new(123, 301, 96, 96, 0.9, "bilinear"),              // 4 tall image, downscale
        new(301, 123, 96, 96, 0.95, "bicubic"),              // 5 wide image, downscale
        new(200, 150, 64, 96, 0.875, "bicubic"),             // 6 non-square input size
        new(640, 480, 100, 100, 0.875, "nearest"),           // 7 nearest downscale
        new(45, 31, 72, 72, 1.0, "nearest"),                 // 8 nearest upscale
        new(90, 70, 32, 32, 1.0, "bilinear", Channels: 1),   // 9 gray input, one channel
        new(80, 60, 64, 64, 1.25, "bilinear"),               // 10 crop larger than resized image: zero padding
        new(333, 250, 112, 112, 0.875, "bilinear", Noise: 0), // 11 smooth content
        new(400, 300, 64, 64, 0.875, "bilinear", Crop: [17, 33, 201, 150], Flip: true),  // 12 resized_crop + hflip
        new(400, 300, 64, 64, 0.875, "bicubic", Crop: [0, 0, 300, 400], Flip: false),   // 13 whole-image resized_crop
        new(64, 48, 64, 64, 0.875, "bicubic", Crop: [5, 7, 20, 30], Flip: true),       // 14 small crop, upscale
    ];

    [TestMethod]
    public void MatchesTorchvisionOnPilImages()
    {
        using var dir = new TempDirectory();
        string spec = dir.File("cases.json");
        File.WriteAllText(spec, JsonSerializer.Serialize(Cases, new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            Converters = { new CaseConverter() },
        }));
        ReferencePython.Run(Script, dir.Path, spec);

        var image = new DecodedImage();
        var report = new List<string>();
        double worst = 0;
        for (int i = 0; i < Cases.Length; i++)
        {
            var c = Cases[i];
            var options = new PreprocessOptions
            {
                Height = c.Height, Width = c.Width, Channels = c.Channels, CropPct = c.CropPct,
                Interpolation = Enum.Parse<ResizeInterpolation>(c.Interpolation, ignoreCase: true),
                Mean = c.MeanOrDefault, Std = c.StdOrDefault,
            };
            var preprocessor = new ImagePreprocessor(options);
            ImageDecoder.DecodeFile(dir.File($"case{i}.png"), c.Channels, into: image);
            Assert.AreEqual(c.ImageWidth, image.Width);
            var actual = new float[preprocessor.SampleLength];
            if (c.Crop is { } crop)
                preprocessor.PreprocessCrop(image, new CropRegion(crop[0], crop[1], crop[2], crop[3]), c.Flip, actual);
            else
                preprocessor.Preprocess(image, actual);

            float[] expected = ReadFloats(dir.File($"case{i}.f32"));
            Assert.HasCount(actual.Length, expected, $"case {i}: output length");
            // Compare in pixel units: un-normalize by multiplying the difference with std (and 255 for 8-bit steps).
            int plane = c.Height * c.Width;
            double maxDiff = 0;
            int differing = 0;
            for (int k = 0; k < actual.Length; k++)
            {
                double d = Math.Abs(actual[k] - expected[k]) * options.Std[k / plane];
                maxDiff = Math.Max(maxDiff, d);
                if (d > 1e-6) differing++;
            }
            worst = Math.Max(worst, maxDiff);
            report.Add(string.Create(CultureInfo.InvariantCulture,
                $"case {i,2} {c.ImageWidth}x{c.ImageHeight} -> {c.Channels}x{c.Height}x{c.Width} {c.Interpolation,-8} crop_pct={c.CropPct} {(c.Crop is null ? "eval" : "resized_crop" + (c.Flip ? "+flip" : ""))}: " +
                $"max |diff| = {maxDiff * 255:0.######}/255, values differing by >1e-6: {differing}/{actual.Length}"));
            Assert.IsLessThanOrEqualTo(2.0 / 255, maxDiff, $"case {i}: max abs diff {maxDiff * 255}/255 exceeds the 2/255 contract");
            // The resampler reproduces Pillow's fixed-point arithmetic, so only float32 rounding may differ.
            Assert.IsLessThanOrEqualTo(1e-5, maxDiff, $"case {i}: max abs diff {maxDiff * 255}/255: no longer bit-compatible with PIL");
        }
        TestContext.WriteLine(string.Join(Environment.NewLine, report));
        TestContext.WriteLine($"worst max |diff| over all cases: {worst * 255:0.######}/255");
    }

    internal static float[] ReadFloats(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        var values = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, values, 0, values.Length * 4);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException();
        return values;
    }

    private sealed class CaseConverter : System.Text.Json.Serialization.JsonConverter<Case>
    {
        public override Case Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => throw new NotSupportedException();

        public override void Write(Utf8JsonWriter writer, Case value, JsonSerializerOptions options)
        {
            writer.WriteStartObject();
            writer.WriteNumber("imageWidth", value.ImageWidth);
            writer.WriteNumber("imageHeight", value.ImageHeight);
            writer.WriteNumber("height", value.Height);
            writer.WriteNumber("width", value.Width);
            writer.WriteNumber("cropPct", value.CropPct);
            writer.WriteString("interpolation", value.Interpolation);
            writer.WriteNumber("channels", value.Channels);
            writer.WriteNumber("noise", value.Noise);
            writer.WritePropertyName("mean");
            JsonSerializer.Serialize(writer, value.MeanOrDefault);
            writer.WritePropertyName("std");
            JsonSerializer.Serialize(writer, value.StdOrDefault);
            if (value.Crop is not null)
            {
                writer.WritePropertyName("crop");
                JsonSerializer.Serialize(writer, value.Crop);
            }
            writer.WriteBoolean("flip", value.Flip);
            writer.WriteEndObject();
        }
    }
}
