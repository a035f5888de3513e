using Cnn.MLNet.Imaging;

namespace Cnn.MLNet.Data;

/// <summary>
/// The decoded pixels of a dataset's images, kept in memory across epochs so that each image is decoded once per run rather than
/// once per epoch, within a byte budget. An image that does not fit, or cannot be decoded, is simply not kept: the batcher decodes
/// it in its batch as before (and reports or skips it there), so the cache never changes what a run computes, only its cost.
/// </summary>
/// <remarks>
/// Decoding is most of the cost of preparing a training batch: a 160×120 PNG costs about ten times its random resized crop to
/// 28 px, flip and normalisation (<c>benchmarks/Cnn.Benchmarks</c>'s data-path profile). Decoding all of it before the first epoch,
/// on every core while nothing else runs, also keeps the decoder off the cores libtorch trains on. Fashion-MNIST's 60,000 images
/// are 47 MB decoded; ImageNet's are about 130 GB, far over the budget, and are decoded per batch as before.
/// Samples given as raw pixels are not kept: their "decoding" is a copy.
/// </remarks>
internal sealed class DecodedImageCache
{
    private readonly DecodedImage?[] _images;
    private long _bytes;

    private DecodedImageCache(IReadOnlyList<ImageSample> samples, long budget)
    {
        Samples = samples;
        Budget = budget;
        _images = new DecodedImage?[samples.Count];
    }

    /// <summary>
    /// The default budget: an eighth of the memory this process may use (<see cref="GCMemoryInfo.TotalAvailableMemoryBytes"/>:
    /// the machine's or the container's limit), at most 2 GiB.
    /// </summary>
    public static long DefaultBudget => Math.Min(2L << 30, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 8);

    /// <summary>The dataset whose images are kept (the batcher uses the cache only for this very list).</summary>
    public IReadOnlyList<ImageSample> Samples { get; }

    /// <summary>The most bytes of pixels kept.</summary>
    public long Budget { get; }

    /// <summary>The bytes of pixels kept.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>How many images are kept.</summary>
    public int Count => _images.Count(i => i is not null);

    /// <summary>The kept image of sample <paramref name="index"/>, or null. Kept images are read, never written, by the batcher's threads.</summary>
    public DecodedImage? this[int index] => Volatile.Read(ref _images[index]);

    /// <summary>
    /// Decodes <paramref name="samples"/> in parallel on every core and keeps them while they fit in <paramref name="budget"/>
    /// bytes; null when nothing is worth keeping (no budget, or only raw-pixel samples).
    /// </summary>
    /// <param name="samples">The dataset.</param>
    /// <param name="channels">The channels the model takes.</param>
    /// <param name="alpha">How transparency is handled.</param>
    /// <param name="budget">The most bytes of pixels to keep.</param>
    /// <param name="cancellationToken">Stops the decoding; <see cref="OperationCanceledException"/> is thrown.</param>
    public static DecodedImageCache? Fill(IReadOnlyList<ImageSample> samples, int channels, AlphaHandling alpha, long budget, CancellationToken cancellationToken)
    {
        if (budget <= 0 || samples.All(s => s.Kind == ImageSampleKind.Pixels)) return null;
        var cache = new DecodedImageCache(samples, budget);
        var parallel = new ParallelOptions { CancellationToken = cancellationToken };
        Parallel.For(0, samples.Count, parallel, () => new DecodedImage(), (i, state, scratch) =>
        {
            var sample = samples[i];
            if (sample.Kind == ImageSampleKind.Pixels) return scratch;
            try
            {
                sample.Decode(channels, alpha, scratch);
            }
            catch (ImageDecodeException)
            {
                return scratch; // decoded (and reported or skipped) in its batch, as without a cache
            }
            if (!cache.TryKeep(i, scratch)) state.Stop();
            return scratch;
        }, _ => { });
        return cache;
    }

    /// <summary>Keeps a copy of <paramref name="image"/> as sample <paramref name="index"/> if it fits the budget.</summary>
    private bool TryKeep(int index, DecodedImage image)
    {
        long size = image.Pixels.Length;
        if (Interlocked.Add(ref _bytes, size) > Budget)
        {
            Interlocked.Add(ref _bytes, -size);
            return false;
        }
        Volatile.Write(ref _images[index], DecodedImage.KeepCopy(image));
        return true;
    }
}
