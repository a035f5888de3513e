using Cnn.MLNet.Imaging;

namespace Cnn.MLNet.Tests.Imaging;

[TestClass]
public sealed class ImagePreprocessorTests
{
    private static DecodedImage RandomImage(int width, int height, int channels, int seed)
    {
        var pixels = new byte[width * height * channels];
        new Random(seed).NextBytes(pixels);
        return DecodedImage.FromPixels(pixels, width, height, channels);
    }

    [TestMethod]
    [DataRow(ResizeInterpolation.Bilinear)]
    [DataRow(ResizeInterpolation.Bicubic)]
    [DataRow(ResizeInterpolation.Nearest)]
    public void CropPctOneOnAnImageAtInputSizeIsIdentity(ResizeInterpolation interpolation)
    {
        var options = new PreprocessOptions { Height = 40, Width = 40, CropPct = 1.0, Interpolation = interpolation };
        var image = RandomImage(40, 40, 3, 11);
        var output = new float[options.SampleLength];
        new ImagePreprocessor(options).Preprocess(image, output);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 40; y++)
                for (int x = 0; x < 40; x++)
                {
                    byte v = image.Pixels[(y * 40 + x) * 3 + c];
                    float expected = (v / 255f - options.Mean[c]) / options.Std[c];
                    Assert.AreEqual(expected, output[(c * 40 + y) * 40 + x], $"c={c} y={y} x={x}");
                }
    }

    [TestMethod]
    public void EvaluationResizeKeepsAspectOnTheShorterSide()
    {
        var p = new ImagePreprocessor(PreprocessOptions.ImageNet());
        Assert.AreEqual((256, 341), p.GetEvaluationResize(480, 640));
        Assert.AreEqual((341, 256), p.GetEvaluationResize(640, 480));
        Assert.AreEqual((256, 256), p.GetEvaluationResize(10, 10));
    }

    [TestMethod]
    public void RandomResizedCropIsDeterministicForASeedAndStaysInside()
    {
        var image = RandomImage(97, 61, 3, 5);
        var p = new ImagePreprocessor(new PreprocessOptions { Height = 32, Width = 32 });
        var a = new float[p.SampleLength];
        var b = new float[p.SampleLength];
        var first = p.PreprocessForTraining(image, new Random(123), a);
        var second = p.PreprocessForTraining(image, new Random(123), b);
        Assert.AreEqual(first, second);
        CollectionAssert.AreEqual(a, b);

        var crops = new HashSet<CropRegion>();
        int flips = 0;
        var random = new Random(9);
        for (int i = 0; i < 400; i++)
        {
            var (crop, flipped) = p.PreprocessForTraining(image, random, a);
            Assert.IsTrue(crop.Top >= 0 && crop.Left >= 0 && crop.Top + crop.Height <= 61 && crop.Left + crop.Width <= 97, crop.ToString());
            double area = (double)crop.Width * crop.Height / (97 * 61);
            double ratio = (double)crop.Width / crop.Height;
            bool fallback = crop.Height == 61 && crop.Width == 81; // in_ratio 1.59 > 4/3: round(61 * 4/3) = 81
            Assert.IsTrue(fallback || (area >= 0.08 - 0.02 && area <= 1.0 + 0.02 && ratio >= 0.75 - 0.05 && ratio <= 4.0 / 3 + 0.05),
                $"crop {crop} area {area:0.###} ratio {ratio:0.###}");
            crops.Add(crop);
            if (flipped) flips++;
        }
        Assert.IsGreaterThan(300, crops.Count, "crops should vary");
        Assert.IsTrue(flips is > 150 and < 250, $"flip rate {flips}/400 should be near 0.5");
        Assert.IsTrue(a.All(float.IsFinite));
    }

    [TestMethod]
    public void FallbackCenterCropFollowsTorchvisionWhenNoAttemptFits()
    {
        // A 1-pixel-high strip: no crop with ratio in [3/4, 4/3] of 8 % .. 100 % area fits, so the fallback clamps to ratio 4/3.
        var crop = RandomResizedCrop.GetParameters(300, 1, new Random(1));
        Assert.AreEqual(new CropRegion(0, (300 - 1) / 2, 1, 1), crop);
    }

    [TestMethod]
    public void HorizontalFlipMirrorsTheCrop()
    {
        var image = RandomImage(50, 30, 1, 3);
        var p = new ImagePreprocessor(new PreprocessOptions { Height = 16, Width = 16, Channels = 1, Mean = [0.5f], Std = [0.5f] });
        var plain = new float[p.SampleLength];
        var flipped = new float[p.SampleLength];
        var crop = new CropRegion(3, 4, 20, 25);
        p.PreprocessCrop(image, crop, false, plain);
        p.PreprocessCrop(image, crop, true, flipped);
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++)
                Assert.AreEqual(plain[y * 16 + x], flipped[y * 16 + 15 - x]);
    }

    [TestMethod]
    public void InvalidOptionsAndInputsGiveClearErrors()
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => new ImagePreprocessor(new PreprocessOptions { Channels = 1 }));
        StringAssert.Contains(ex.Message, "Mean must have 1");
        Assert.ThrowsExactly<ArgumentException>(() => new ImagePreprocessor(new PreprocessOptions { CropPct = 0 }));
        var p = new ImagePreprocessor(new PreprocessOptions { Height = 8, Width = 8 });
        var gray = RandomImage(8, 8, 1, 1);
        var mismatch = Assert.ThrowsExactly<ArgumentException>(() => p.Preprocess(gray, new float[p.SampleLength]));
        StringAssert.Contains(mismatch.Message, "expects 3");
        Assert.ThrowsExactly<ArgumentException>(() => p.Preprocess(RandomImage(8, 8, 3, 1), new float[10]));
    }
}
