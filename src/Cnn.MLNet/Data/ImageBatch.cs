using Cnn.MLNet.Imaging;
using TorchSharp;

namespace Cnn.MLNet.Data;

/// <summary>
/// A prepared batch: <see cref="Count"/> preprocessed images as one contiguous [N, C, H, W] float32 buffer plus their labels.
/// The buffers are pooled: dispose the batch (the prefetching enumerator does so when it moves on) to return them.
/// </summary>
internal sealed class ImageBatch : IDisposable, Training.ITrainingBatch
{
    private ImageBatcher? _owner;
    private BatchBuffers? _buffers;

    internal ImageBatch(ImageBatcher owner, BatchBuffers buffers, int count, int epoch, int index, IReadOnlyList<ImageDecodeException> skipped)
    {
        _owner = owner;
        _buffers = buffers;
        Count = count;
        Epoch = epoch;
        Index = index;
        Skipped = skipped;
        var options = owner.Preprocessor.Options;
        Channels = options.Channels;
        Height = options.Height;
        Width = options.Width;
    }

    /// <summary>Number of images in the batch (smaller than the batch size for a last partial batch or after skipped images).</summary>
    public int Count { get; }

    /// <summary>The epoch this batch belongs to.</summary>
    public int Epoch { get; }

    /// <summary>Position of the batch in its epoch (0-based).</summary>
    public int Index { get; }

    /// <summary>Channels per image.</summary>
    public int Channels { get; }

    /// <summary>Image height.</summary>
    public int Height { get; }

    /// <summary>Image width.</summary>
    public int Width { get; }

    /// <summary>Tensor shape: [Count, Channels, Height, Width].</summary>
    public long[] Shape => [Count, Channels, Height, Width];

    /// <summary>Images that were left out because they could not be decoded (only with <see cref="ImageBatcherOptions.SkipCorruptImages"/>).</summary>
    public IReadOnlyList<ImageDecodeException> Skipped { get; }

    /// <summary>The pixels, [Count, C, H, W] row-major.</summary>
    /// <exception cref="ObjectDisposedException">The batch was disposed.</exception>
    public ReadOnlySpan<float> Pixels => Buffers.Pixels.AsSpan(0, Count * Channels * Height * Width);

    /// <summary>The pixels as memory, for consumers that read them in place (ONNX Runtime pins them for a run).</summary>
    internal Memory<float> PixelMemory => Buffers.Pixels.AsMemory(0, Count * Channels * Height * Width);

    /// <summary>The class index of each image.</summary>
    public ReadOnlySpan<long> Labels => Buffers.Labels.AsSpan(0, Count);

    /// <summary>The dataset position of each image (index into the sample list given to the batcher).</summary>
    public ReadOnlySpan<int> SampleIndices => Buffers.Indices.AsSpan(0, Count);

    private BatchBuffers Buffers => _buffers ?? throw new ObjectDisposedException(nameof(ImageBatch), "The batch was disposed (the prefetching enumerator disposes each batch when it moves to the next one).");

    /// <summary>Copies the pixels into a new float32 tensor of shape [Count, C, H, W] on the CPU. The caller disposes it.</summary>
    public torch.Tensor ToTensor()
    {
        var pixels = Pixels;
        var tensor = torch.empty(Shape, torch.ScalarType.Float32);
        try
        {
            tensor.data<float>().CopyFrom(pixels);
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
        return tensor;
    }

    /// <summary>Copies the labels into a new int64 tensor of shape [Count]. The caller disposes it.</summary>
    public torch.Tensor LabelsToTensor() => torch.tensor(Labels.ToArray(), torch.ScalarType.Int64);

    /// <summary>Returns the buffers to the batcher's pool. Idempotent.</summary>
    public void Dispose()
    {
        var buffers = Interlocked.Exchange(ref _buffers, null);
        if (buffers is not null) _owner?.Return(buffers);
        _owner = null;
    }
}

/// <summary>The pooled arrays behind one batch.</summary>
internal sealed class BatchBuffers(int batchSize, int sampleLength)
{
    public float[] Pixels { get; } = new float[(long)batchSize * sampleLength];
    public long[] Labels { get; } = new long[batchSize];
    public int[] Indices { get; } = new int[batchSize];
}
