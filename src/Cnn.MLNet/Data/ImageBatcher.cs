using System.Collections;
using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using Cnn.MLNet.Imaging;

namespace Cnn.MLNet.Data;

/// <summary>
/// Decodes and preprocesses images in parallel straight into pooled [N, C, H, W] float32 batch buffers, and enumerates an
/// epoch with prefetching: batch k + 1 is prepared on a background task while the consumer works on batch k.
/// </summary>
/// <remarks>
/// <para>Deterministic: the epoch order depends only on <see cref="ImageBatcherOptions.Seed"/> and the epoch number, and the
/// augmentation of a sample only on the seed, the epoch and the sample's position in the dataset — never on thread
/// scheduling or batch composition.</para>
/// <para>Memory stays flat: batch buffers and per-thread decode buffers are pooled and reused. Errors name the sample
/// (file path or row). The batcher is thread-safe.</para>
/// </remarks>
internal sealed class ImageBatcher
{
    private const int MaxPooledBuffers = 4;
    private readonly ConcurrentBag<BatchBuffers> _buffers = [];
    private readonly ConcurrentBag<DecodedImage> _images = [];
    private long _skipped;
    private DecodedImageCache? _decoded;

    /// <summary>Test hook: called with the batch index when <see cref="CreateBatch"/> starts preparing a batch.</summary>
    internal Action<int>? BatchStarting;

    /// <summary>Creates a batcher that prepares images with <paramref name="preprocessor"/>.</summary>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public ImageBatcher(ImagePreprocessor preprocessor, ImageBatcherOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(preprocessor);
        options ??= new ImageBatcherOptions();
        options.Validate();
        Preprocessor = preprocessor;
        Options = options;
    }

    /// <summary>The preprocessing applied to each image.</summary>
    public ImagePreprocessor Preprocessor { get; }

    /// <summary>Batching options.</summary>
    public ImageBatcherOptions Options { get; }

    /// <summary>Total number of images skipped as corrupt so far (with <see cref="ImageBatcherOptions.SkipCorruptImages"/>).</summary>
    public long SkippedCount => Interlocked.Read(ref _skipped);

    /// <summary>
    /// Decodes <paramref name="samples"/> now, in parallel, and keeps their pixels for this batcher's later batches of that list
    /// while they fit in <paramref name="budget"/> bytes (<see cref="DecodedImageCache"/>): each image is then decoded once per
    /// run, not once per epoch, and not on the cores training runs on. Batches compute exactly what they would without it.
    /// </summary>
    /// <returns>The bytes of pixels kept (0 when none).</returns>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    public long KeepDecoded(IReadOnlyList<ImageSample> samples, long budget, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(samples);
        _decoded = DecodedImageCache.Fill(samples, Preprocessor.Options.Channels, Preprocessor.Options.Alpha, budget, cancellationToken);
        return _decoded?.Bytes ?? 0;
    }

    /// <summary>
    /// Serves this batcher's batches of the samples <paramref name="source"/> kept decoded (<see cref="KeepDecoded"/>) from the
    /// same pixels, without a copy, where both decode alike (channels and transparency): a distillation teacher's batcher reads
    /// the student's. False, and nothing shared, where they decode differently or <paramref name="source"/> kept nothing.
    /// </summary>
    public bool ShareDecoded(ImageBatcher source)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (source._decoded is null || source.Preprocessor.Options.Channels != Preprocessor.Options.Channels
            || source.Preprocessor.Options.Alpha != Preprocessor.Options.Alpha)
            return false;
        _decoded = source._decoded;
        return true;
    }

    /// <summary>Images kept decoded by <see cref="KeepDecoded"/>, and their bytes.</summary>
    public (int Images, long Bytes) DecodedKept => _decoded is { } d ? (d.Count, d.Bytes) : (0, 0);

    /// <summary>Number of batches an epoch of <paramref name="sampleCount"/> samples yields (of this batcher's shard when sharded).</summary>
    public int GetBatchCount(int sampleCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sampleCount);
        int size = Options.BatchSize;
        sampleCount = Distributed.DistributedShard.Length(sampleCount, Options.ShardCount); // this rank's part (all with one shard)
        return Options.DropLast ? sampleCount / size : (sampleCount + size - 1) / size;
    }

    /// <summary>
    /// The order in which an epoch visits the samples: 0..n−1, or a permutation seeded by the seed and <paramref name="epoch"/> when
    /// shuffling; only this batcher's shard of it when <see cref="ImageBatcherOptions.ShardCount"/> &gt; 1.
    /// </summary>
    public int[] GetEpochOrder(int sampleCount, int epoch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sampleCount);
        var order = new int[sampleCount];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        if (Options.Shuffle) new Random(Mix(Options.Seed, epoch, -1)).Shuffle(order);
        return Distributed.DistributedShard.Slice(order, Options.ShardIndex, Options.ShardCount);
    }

    /// <summary>
    /// Prepares one batch from the samples at <paramref name="indices"/> (at most <see cref="ImageBatcherOptions.BatchSize"/>),
    /// decoding and preprocessing them in parallel. Dispose the result to return its buffers.
    /// </summary>
    /// <param name="samples">The dataset.</param>
    /// <param name="indices">Positions in <paramref name="samples"/>, in batch order.</param>
    /// <param name="epoch">Epoch number (seeds the augmentation).</param>
    /// <param name="batchIndex">Batch position reported by <see cref="ImageBatch.Index"/>.</param>
    /// <param name="cancellationToken">Stops the work; <see cref="OperationCanceledException"/> is thrown.</param>
    /// <exception cref="ImageDecodeException">A sample cannot be decoded (and corrupt images are not skipped); names the sample.</exception>
    public ImageBatch CreateBatch(IReadOnlyList<ImageSample> samples, IReadOnlyList<int> indices, int epoch = 0, int batchIndex = 0,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(indices);
        int n = indices.Count;
        if (n > Options.BatchSize) throw new ArgumentException($"{n} indices exceed the batch size {Options.BatchSize}.", nameof(indices));
        for (int i = 0; i < n; i++)
            if ((uint)indices[i] >= (uint)samples.Count)
                throw new ArgumentOutOfRangeException(nameof(indices), indices[i], $"Index {indices[i]} is outside the {samples.Count} samples.");
        cancellationToken.ThrowIfCancellationRequested();
        BatchStarting?.Invoke(batchIndex);

        var decoded = _decoded is { } cache && ReferenceEquals(cache.Samples, samples) ? cache : null;
        var buffers = Rent();
        var failures = Options.SkipCorruptImages ? new ImageDecodeException?[n] : null;
        int sampleLength = Preprocessor.SampleLength;
        try
        {
            var parallel = new ParallelOptions { MaxDegreeOfParallelism = Options.MaxDegreeOfParallelism, CancellationToken = cancellationToken };
            Parallel.For(0, n, parallel,
                () => _images.TryTake(out var image) ? image : new DecodedImage(),
                (i, _, image) =>
                {
                    int index = indices[i];
                    var sample = samples[index];
                    var source = decoded?[index];
                    if (source is null)
                    {
                        try
                        {
                            source = sample.Decode(Preprocessor.Options.Channels, Preprocessor.Options.Alpha, image);
                        }
                        catch (ImageDecodeException ex) when (failures is not null)
                        {
                            failures[i] = ex;
                            return image;
                        }
                    }
                    var destination = buffers.Pixels.AsSpan(i * sampleLength, sampleLength);
                    try
                    {
                        if (Options.Augment)
                            Preprocessor.PreprocessForTraining(source, new Random(Mix(Options.Seed, epoch, index)), destination);
                        else
                            Preprocessor.Preprocess(source, destination);
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException)
                    {
                        throw new InvalidOperationException($"Preprocessing image '{sample.Name}' failed: {ex.Message}", ex);
                    }
                    buffers.Labels[i] = sample.Label;
                    buffers.Indices[i] = index;
                    return image;
                },
                image => _images.Add(image));
        }
        catch (AggregateException ex)
        {
            Return(buffers);
            var inner = ex.Flatten().InnerExceptions;
            var first = inner.FirstOrDefault(e => e is ImageDecodeException) ?? inner[0];
            ExceptionDispatchInfo.Capture(first).Throw();
            throw; // unreachable
        }
        catch
        {
            Return(buffers);
            throw;
        }

        int count = n;
        IReadOnlyList<ImageDecodeException> skipped = [];
        if (failures is not null && Array.Exists(failures, f => f is not null))
        {
            var list = new List<ImageDecodeException>();
            count = 0;
            for (int i = 0; i < n; i++)
            {
                if (failures[i] is { } failure)
                {
                    list.Add(failure);
                    continue;
                }
                if (count != i)
                {
                    buffers.Pixels.AsSpan(i * sampleLength, sampleLength).CopyTo(buffers.Pixels.AsSpan(count * sampleLength, sampleLength));
                    buffers.Labels[count] = buffers.Labels[i];
                    buffers.Indices[count] = buffers.Indices[i];
                }
                count++;
            }
            skipped = list;
            Interlocked.Add(ref _skipped, list.Count);
        }
        return new ImageBatch(this, buffers, count, epoch, batchIndex, skipped);
    }

    /// <summary>
    /// Enumerates the batches of one epoch in <see cref="GetEpochOrder"/> order, preparing the next batch in the background
    /// while the current one is used. Each batch is valid until the next <c>MoveNext</c> (which disposes it) or until the
    /// enumerator is disposed; copy it (e.g. <see cref="ImageBatch.ToTensor"/>) to keep it longer.
    /// </summary>
    /// <param name="samples">The dataset.</param>
    /// <param name="epoch">Epoch number (seeds the shuffle and the augmentation).</param>
    /// <param name="cancellationToken">Stops the enumeration: <c>MoveNext</c> throws <see cref="OperationCanceledException"/> and background work ends.</param>
    public IEnumerable<ImageBatch> EnumerateEpoch(IReadOnlyList<ImageSample> samples, int epoch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(samples);
        return new EpochEnumerable(this, samples, epoch, cancellationToken);
    }

    internal void Return(BatchBuffers buffers)
    {
        if (buffers.Pixels.Length == (long)Options.BatchSize * Preprocessor.SampleLength && _buffers.Count < MaxPooledBuffers)
            _buffers.Add(buffers);
    }

    private BatchBuffers Rent() => _buffers.TryTake(out var buffers) ? buffers : new BatchBuffers(Options.BatchSize, Preprocessor.SampleLength);

    /// <summary>SplitMix64-based seed derivation, stable across processes and platforms.</summary>
    internal static int Mix(int seed, int epoch, int index)
    {
        ulong z = SplitMix((ulong)(uint)seed);
        z = SplitMix(z ^ (uint)epoch);
        z = SplitMix(z ^ (uint)index);
        return (int)(z & 0x7FFFFFFF);

        static ulong SplitMix(ulong x)
        {
            x += 0x9E3779B97F4A7C15UL;
            x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
            x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
            return x ^ (x >> 31);
        }
    }

    private sealed class EpochEnumerable(ImageBatcher batcher, IReadOnlyList<ImageSample> samples, int epoch, CancellationToken token) : IEnumerable<ImageBatch>
    {
        public IEnumerator<ImageBatch> GetEnumerator() => new PrefetchingEnumerator(batcher, samples, epoch, token);
        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }

    private sealed class PrefetchingEnumerator : IEnumerator<ImageBatch>
    {
        private readonly ImageBatcher _batcher;
        private readonly IReadOnlyList<ImageSample> _samples;
        private readonly int _epoch;
        private readonly int[] _order;
        private readonly int _batchCount;
        private readonly CancellationTokenSource _cancellation;
        private int _next;
        private Task<ImageBatch>? _pending;
        private ImageBatch? _current;
        private bool _disposed;

        public PrefetchingEnumerator(ImageBatcher batcher, IReadOnlyList<ImageSample> samples, int epoch, CancellationToken token)
        {
            _batcher = batcher;
            _samples = samples;
            _epoch = epoch;
            _order = batcher.GetEpochOrder(samples.Count, epoch);
            _batchCount = batcher.GetBatchCount(samples.Count);
            _cancellation = CancellationTokenSource.CreateLinkedTokenSource(token);
        }

        public ImageBatch Current => _current ?? throw new InvalidOperationException("MoveNext has not returned true.");

        object IEnumerator.Current => Current;

        public bool MoveNext()
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _current?.Dispose();
            _current = null;
            _cancellation.Token.ThrowIfCancellationRequested();
            if (_pending is null)
            {
                if (_next >= _batchCount) return false;
                _pending = Start(_next++);
            }
            var batch = _pending.GetAwaiter().GetResult();
            _pending = _next < _batchCount ? Start(_next++) : null;
            _current = batch;
            return true;
        }

        private Task<ImageBatch> Start(int k)
        {
            int size = _batcher.Options.BatchSize;
            int length = Math.Min(size, _order.Length - k * size);
            var indices = new ArraySegment<int>(_order, k * size, length);
            var token = _cancellation.Token;
            return Task.Run(() => _batcher.CreateBatch(_samples, indices, _epoch, k, token), token);
        }

        public void Reset() => throw new NotSupportedException("Enumerate the epoch again instead.");

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            _cancellation.Cancel();
            if (_pending is not null)
            {
                try { _pending.GetAwaiter().GetResult().Dispose(); }
                catch (Exception) { /* the prefetched batch is abandoned; its error or cancellation no longer matters */ }
                _pending = null;
            }
            _current?.Dispose();
            _current = null;
            _cancellation.Dispose();
        }
    }
}
