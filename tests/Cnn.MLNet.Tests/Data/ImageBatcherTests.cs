using Cnn.Backbones.Native;
using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using Cnn.Tests.Shared;
using SkiaSharp;

namespace Cnn.MLNet.Tests.Data;

[TestClass]
public sealed class ImageBatcherTests
{
    private static readonly PreprocessOptions Options = new() { Height = 24, Width = 24, CropPct = 0.875, Interpolation = ResizeInterpolation.Bicubic };

    /// <summary>Random RGB pixels of varying sizes, as raw pixels, PNG bytes and PNG files (labels = i % 3).</summary>
    private static List<ImageSample> MakeSamples(TempDirectory dir, int count)
    {
        var random = new Random(3);
        var samples = new List<ImageSample>();
        for (int i = 0; i < count; i++)
        {
            int w = 20 + random.Next(30), h = 20 + random.Next(30);
            var rgba = new byte[w * h * 4];
            random.NextBytes(rgba);
            for (int p = 3; p < rgba.Length; p += 4) rgba[p] = 255;
            switch (i % 3)
            {
                case 0:
                    samples.Add(ImageSample.FromPixels(rgba, w, h, 4, i % 3, $"row {i}"));
                    break;
                default:
                    byte[] png = EncodePng(rgba, w, h);
                    if (i % 3 == 1)
                    {
                        samples.Add(ImageSample.FromEncoded(png, i % 3, $"row {i}"));
                    }
                    else
                    {
                        string path = dir.File($"img{i}.png");
                        File.WriteAllBytes(path, png);
                        samples.Add(ImageSample.FromFile(path, i % 3));
                    }
                    break;
            }
        }
        return samples;
    }

    private static byte[] EncodePng(byte[] rgba, int w, int h)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    private static float[] Single(ImagePreprocessor p, ImageSample sample, int seed, int epoch, int index, bool augment)
    {
        var output = new float[p.SampleLength];
        var image = sample.Decode(p.Options.Channels);
        if (augment) p.PreprocessForTraining(image, new Random(ImageBatcher.Mix(seed, epoch, index)), output);
        else p.Preprocess(image, output);
        return output;
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void BatchesEqualPerImagePreprocessingInTheSeededEpochOrder(bool augment)
    {
        using var dir = new TempDirectory();
        var samples = MakeSamples(dir, 23);
        var p = new ImagePreprocessor(Options);
        var batcher = new ImageBatcher(p, new ImageBatcherOptions { BatchSize = 5, Shuffle = true, Seed = 17, Augment = augment });
        int[] order = batcher.GetEpochOrder(samples.Count, epoch: 2);
        CollectionAssert.AreNotEqual(Enumerable.Range(0, 23).ToArray(), order, "shuffled");
        CollectionAssert.AreEquivalent(Enumerable.Range(0, 23).ToArray(), order);
        CollectionAssert.AreEqual(order, batcher.GetEpochOrder(samples.Count, 2), "same seed and epoch, same order");
        CollectionAssert.AreNotEqual(order, batcher.GetEpochOrder(samples.Count, 3), "another epoch, another order");

        var seen = new List<int>();
        int batches = 0;
        foreach (var batch in batcher.EnumerateEpoch(samples, epoch: 2))
        {
            Assert.AreEqual(batches++, batch.Index);
            Assert.AreEqual(batches < 5 ? 5 : 3, batch.Count);
            CollectionAssert.AreEqual(new long[] { batch.Count, 3, 24, 24 }, batch.Shape);
            for (int i = 0; i < batch.Count; i++)
            {
                int index = batch.SampleIndices[i];
                seen.Add(index);
                Assert.AreEqual(samples[index].Label, (int)batch.Labels[i]);
                var expected = Single(p, samples[index], 17, 2, index, augment);
                CollectionAssert.AreEqual(expected, batch.Pixels.Slice(i * p.SampleLength, p.SampleLength).ToArray(), $"sample {index}");
            }
        }
        Assert.AreEqual(5, batches);
        CollectionAssert.AreEqual(order, seen);
    }

    [TestMethod]
    public void TensorHasTheBatchShapeAndValues()
    {
        TorchRuntime.EnsureLoaded();
        using var dir = new TempDirectory();
        var samples = MakeSamples(dir, 6);
        var batcher = new ImageBatcher(new ImagePreprocessor(Options), new ImageBatcherOptions { BatchSize = 4 });
        using var batch = batcher.CreateBatch(samples, [5, 0, 3]);
        using var tensor = batch.ToTensor();
        using var labels = batch.LabelsToTensor();
        CollectionAssert.AreEqual(new long[] { 3, 3, 24, 24 }, tensor.shape);
        CollectionAssert.AreEqual(batch.Pixels.ToArray(), tensor.data<float>().ToArray());
        CollectionAssert.AreEqual(new long[] { samples[5].Label, samples[0].Label, samples[3].Label }, labels.data<long>().ToArray());
    }

    [TestMethod]
    public void NextBatchIsPreparedWhileTheConsumerHoldsTheCurrentOne()
    {
        using var dir = new TempDirectory();
        var samples = MakeSamples(dir, 12);
        var batcher = new ImageBatcher(new ImagePreprocessor(Options), new ImageBatcherOptions { BatchSize = 4 });
        using var started = new SemaphoreSlim(0);
        var startedBatches = new System.Collections.Concurrent.ConcurrentQueue<int>();
        batcher.BatchStarting = k => { startedBatches.Enqueue(k); started.Release(); };
        using var enumerator = batcher.EnumerateEpoch(samples, 0).GetEnumerator();
        Assert.IsTrue(enumerator.MoveNext());
        Assert.AreEqual(0, enumerator.Current.Index);
        // Without another MoveNext, batch 1 must start in the background.
        Assert.IsTrue(started.Wait(TimeSpan.FromSeconds(10)) && started.Wait(TimeSpan.FromSeconds(10)), "batch 1 was not prefetched");
        CollectionAssert.AreEqual(new[] { 0, 1 }, startedBatches.ToArray());
        var first = enumerator.Current;
        Assert.IsTrue(enumerator.MoveNext());
        Assert.ThrowsExactly<ObjectDisposedException>(() => first.Pixels.Length.ToString(), "the previous batch is released on MoveNext");
        Assert.IsTrue(enumerator.MoveNext());
        Assert.IsFalse(enumerator.MoveNext());
    }

    [TestMethod]
    public void CancellationStopsTheEnumeration()
    {
        using var dir = new TempDirectory();
        var samples = MakeSamples(dir, 40);
        var batcher = new ImageBatcher(new ImagePreprocessor(Options), new ImageBatcherOptions { BatchSize = 4 });
        using var cts = new CancellationTokenSource();
        int seen = 0;
        Assert.ThrowsExactly<OperationCanceledException>(() =>
        {
            foreach (var batch in batcher.EnumerateEpoch(samples, 0, cts.Token))
            {
                seen++;
                if (seen == 2) cts.Cancel();
            }
        });
        Assert.AreEqual(2, seen);
        cts.Dispose();
        Assert.ThrowsExactly<OperationCanceledException>(() => batcher.CreateBatch(samples, [0, 1], cancellationToken: new CancellationToken(true)));
    }

    [TestMethod]
    public void CorruptImageFailsWithItsNameOrIsSkippedAndCounted()
    {
        using var dir = new TempDirectory();
        var samples = MakeSamples(dir, 9);
        string corrupt = dir.File("corrupt.png");
        File.WriteAllBytes(corrupt, [0x89, (byte)'P', (byte)'N', (byte)'G', 1, 2, 3]);
        samples[4] = ImageSample.FromFile(corrupt, 1);
        samples[7] = ImageSample.FromEncoded(new byte[] { 1, 2, 3 }, 1, "row 7");

        var strict = new ImageBatcher(new ImagePreprocessor(Options), new ImageBatcherOptions { BatchSize = 3 });
        var ex = Assert.ThrowsExactly<ImageDecodeException>(() => strict.EnumerateEpoch(samples, 0).ToList());
        StringAssert.Contains(ex.Message, corrupt);

        var lenient = new ImageBatcher(new ImagePreprocessor(Options), new ImageBatcherOptions { BatchSize = 3, SkipCorruptImages = true });
        var counts = new List<int>();
        var indices = new List<int>();
        var skipped = new List<string>();
        foreach (var batch in lenient.EnumerateEpoch(samples, 0))
        {
            counts.Add(batch.Count);
            indices.AddRange(batch.SampleIndices.ToArray());
            skipped.AddRange(batch.Skipped.Select(s => s.Source));
            var p = lenient.Preprocessor;
            for (int i = 0; i < batch.Count; i++)
                CollectionAssert.AreEqual(Single(p, samples[batch.SampleIndices[i]], 0, 0, 0, false), batch.Pixels.Slice(i * p.SampleLength, p.SampleLength).ToArray());
        }
        CollectionAssert.AreEqual(new[] { 3, 2, 2 }, counts);
        CollectionAssert.AreEqual(new[] { 0, 1, 2, 3, 5, 6, 8 }, indices);
        CollectionAssert.AreEqual(new[] { corrupt, "row 7" }, skipped);
        Assert.AreEqual(2, lenient.SkippedCount);
    }

    [TestMethod]
    [DataRow(long.MaxValue)]
    [DataRow(3000L)] // room for a few images only: the rest are decoded per batch
    public void ImagesKeptDecodedGiveTheSameBatchesAsDecodingEachBatch(long budget)
    {
        using var dir = new TempDirectory();
        var samples = MakeSamples(dir, 17);
        string corrupt = dir.File("corrupt.png");
        File.WriteAllBytes(corrupt, [0x89, (byte)'P', (byte)'N', (byte)'G', 1, 2, 3]);
        samples[5] = ImageSample.FromFile(corrupt, 2);
        var options = new ImageBatcherOptions { BatchSize = 4, Shuffle = true, Seed = 5, Augment = true, SkipCorruptImages = true };
        var plain = new ImageBatcher(new ImagePreprocessor(Options), options);
        var keeping = new ImageBatcher(new ImagePreprocessor(Options), options);

        long kept = keeping.KeepDecoded(samples, budget);
        var (images, bytes) = keeping.DecodedKept;
        Assert.AreEqual(kept, bytes);
        Assert.IsTrue(bytes <= budget, $"{bytes} bytes kept over a budget of {budget}");
        int encoded = samples.Count(s => s.Kind != ImageSampleKind.Pixels) - 1; // the corrupt one is not kept
        if (budget == long.MaxValue) Assert.AreEqual(encoded, images, "every decodable encoded image is kept; raw pixels are not");
        else Assert.IsTrue(images is > 0 && images < encoded, $"{images} of {encoded} kept within {budget} bytes");

        for (int epoch = 0; epoch < 2; epoch++)
        {
            var expected = plain.EnumerateEpoch(samples, epoch).Select(b => (b.Pixels.ToArray(), b.SampleIndices.ToArray(), b.Skipped.Count)).ToList();
            var actual = keeping.EnumerateEpoch(samples, epoch).Select(b => (b.Pixels.ToArray(), b.SampleIndices.ToArray(), b.Skipped.Count)).ToList();
            Assert.AreEqual(expected.Count, actual.Count);
            for (int k = 0; k < expected.Count; k++)
            {
                CollectionAssert.AreEqual(expected[k].Item1, actual[k].Item1, $"epoch {epoch} batch {k}: pixels");
                CollectionAssert.AreEqual(expected[k].Item2, actual[k].Item2, $"epoch {epoch} batch {k}: samples");
                Assert.AreEqual(expected[k].Item3, actual[k].Item3, $"epoch {epoch} batch {k}: skipped");
            }
        }
        Assert.AreEqual(plain.SkippedCount, keeping.SkippedCount, "the corrupt image is still skipped and counted in its batch");

        // Another list of the same images is decoded per batch: the kept pixels belong to the list they were decoded from.
        var copy = samples.ToList();
        copy[1] = samples[2]; // both are kept decoded (an encoded image and a file)
        using var fromCopy = keeping.CreateBatch(copy, [1], epoch: 0);
        using var expectedCopy = plain.CreateBatch(copy, [1], epoch: 0);
        CollectionAssert.AreEqual(expectedCopy.Pixels.ToArray(), fromCopy.Pixels.ToArray());

        var strict = new ImageBatcher(new ImagePreprocessor(Options), options with { SkipCorruptImages = false });
        strict.KeepDecoded(samples, budget);
        StringAssert.Contains(Assert.ThrowsExactly<ImageDecodeException>(() => strict.EnumerateEpoch(samples, 0).ToList()).Message, corrupt);
    }

    /// <summary>
    /// Distillation's teacher batcher reads the pixels the student's batcher kept where both decode alike (same channels), with
    /// its own size and normalisation, and gives the batches it would decoding itself; a batcher that decodes otherwise (one
    /// channel) keeps its own copy, within the same budget (<see cref="Cnn.MLNet.Training.OptimizationSetup.KeepDecoded"/>).
    /// </summary>
    [TestMethod]
    public void ABatcherOfTheSameImagesReadsThePixelsAnotherKeptWhereBothDecodeAlike()
    {
        using var dir = new TempDirectory();
        var samples = MakeSamples(dir, 9);
        var options = new ImageBatcherOptions { BatchSize = 4, Shuffle = true, Seed = 3, Augment = true };
        ImageBatcher Batcher(PreprocessOptions preprocess) => new(new ImagePreprocessor(preprocess), options);
        var teacherPreprocess = Options with { Height = 40, Width = 40, Mean = [0.5f, 0.4f, 0.3f], Std = [0.2f, 0.3f, 0.4f] };
        var grey = Options with { Channels = 1, Mean = [0.5f], Std = [0.25f] };
        var student = Batcher(Options);
        var teacher = Batcher(teacherPreprocess);
        var greyBatcher = Batcher(grey);
        Assert.IsFalse(teacher.ShareDecoded(student), "nothing kept yet");

        var ml = new Microsoft.ML.MLContext(seed: 1);
        var log = new List<string>();
        ml.Log += (_, e) => { if (e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Info) lock (log) log.Add(e.Message); };
        using (var channel = ((Microsoft.ML.Runtime.IChannelProvider)ml).Start("test"))
            Cnn.MLNet.Training.OptimizationSetup.KeepDecoded(
                [(student, samples, "student"), (teacher, samples, "teacher"), (greyBatcher, samples, "grey")], channel, CancellationToken.None);
        Assert.AreEqual(2, log.Count, string.Join("\n", log));
        StringAssert.Contains(log[0], "Decoded the student images once");
        StringAssert.Contains(log[1], "Decoded the grey images once", "the teacher decoded nothing: it reads the student's pixels");
        Assert.AreEqual(samples.Count(s => s.Kind != ImageSampleKind.Pixels), student.DecodedKept.Images);
        Assert.AreEqual(student.DecodedKept, teacher.DecodedKept);
        Assert.AreEqual(student.DecodedKept.Images, greyBatcher.DecodedKept.Images);
        Assert.AreNotEqual(student.DecodedKept.Bytes, greyBatcher.DecodedKept.Bytes, "one channel: decoded and kept apart");

        foreach (var (kept, preprocess) in new[] { (teacher, teacherPreprocess), (greyBatcher, grey) })
            for (int epoch = 0; epoch < 2; epoch++)
            {
                var expected = Batcher(preprocess).EnumerateEpoch(samples, epoch).Select(b => b.Pixels.ToArray()).ToList();
                var actual = kept.EnumerateEpoch(samples, epoch).Select(b => b.Pixels.ToArray()).ToList();
                Assert.AreEqual(expected.Count, actual.Count);
                for (int k = 0; k < expected.Count; k++) CollectionAssert.AreEqual(expected[k], actual[k], $"{preprocess.Channels} channels, epoch {epoch}, batch {k}");
            }
    }

    [TestMethod]
    [DoNotParallelize] // measures process-wide allocations
    public void SteadyStateEpochsReuseBuffers()
    {
        var pixels = new byte[64 * 64];
        new Random(1).NextBytes(pixels);
        var samples = Enumerable.Range(0, 64).Select(i => ImageSample.FromPixels(pixels, 64, 64, 1, i % 2, $"row {i}")).ToList();
        var options = new PreprocessOptions { Height = 64, Width = 64, Channels = 1, Mean = [0.5f], Std = [0.5f] };
        var batcher = new ImageBatcher(new ImagePreprocessor(options), new ImageBatcherOptions { BatchSize = 16, Augment = true, Shuffle = true });
        foreach (var _ in batcher.EnumerateEpoch(samples, 0)) { }
        long before = GC.GetTotalAllocatedBytes(precise: true);
        for (int epoch = 1; epoch <= 3; epoch++)
            foreach (var _ in batcher.EnumerateEpoch(samples, epoch)) { }
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        long batchBuffer = 16L * 64 * 64 * sizeof(float);
        // 12 batches were prepared; without pooling that alone would allocate 12 batch buffers.
        Assert.IsLessThan(2 * batchBuffer, allocated, $"allocated {allocated} bytes over 3 epochs; batch buffer is {batchBuffer}");
    }
}
