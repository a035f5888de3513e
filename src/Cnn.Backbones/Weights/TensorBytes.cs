using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Weights;

/// <summary>Moves raw little-endian bytes between streams and contiguous CPU tensors without per-element work.</summary>
internal static class TensorBytes
{
    private const long ChunkBytes = 1L << 30;

    [ThreadStatic] private static long t_created;

    /// <summary>
    /// Bytes of the tensors that the weight readers have created on this thread (a running total): the mutation tests check that a
    /// reader never creates more than its input justifies, i.e. that every size a file claims is checked before the tensor exists.
    /// </summary>
    internal static long CreatedOnThisThread => t_created;

    /// <summary>A new uninitialised CPU tensor for a reader, counted in <see cref="CreatedOnThisThread"/> before it is allocated.</summary>
    public static Tensor Empty(long[] shape, ScalarType type)
    {
        long numel = 1;
        foreach (long d in shape) numel = d == 0 || numel == 0 ? 0 : numel > long.MaxValue / Math.Max(d, 1) ? long.MaxValue : numel * d;
        t_created += numel > long.MaxValue / 8 ? long.MaxValue : numel * DTypes.ElementSize(type);
        return torch.empty(shape, type);
    }

    public static void EnsureLittleEndianHost()
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("Weight files store little-endian data; big-endian hosts are not supported.");
    }

    /// <summary>Fills a new contiguous CPU tensor's memory from <paramref name="stream"/>.</summary>
    public static void ReadInto(Stream stream, Tensor tensor)
    {
        long elementSize = tensor.ElementSize;
        long total = tensor.numel() * elementSize;
        if (total == 0) return;
        if (total <= ChunkBytes)
        {
            stream.ReadExactly(tensor.bytes);
            return;
        }
        using var flat = tensor.view(-1);
        long perChunk = ChunkBytes / elementSize;
        for (long start = 0; start < flat.shape[0]; start += perChunk)
        {
            using var part = flat.narrow(0, start, Math.Min(perChunk, flat.shape[0] - start));
            stream.ReadExactly(part.bytes);
        }
    }

    /// <summary>Writes a tensor's elements (row-major, little-endian) to <paramref name="stream"/>.</summary>
    public static void Write(Stream stream, Tensor tensor)
    {
        using var scope = torch.NewDisposeScope();
        var cpu = tensor.detach().cpu().contiguous();
        long total = cpu.numel() * cpu.ElementSize;
        if (total == 0) return;
        if (total <= ChunkBytes)
        {
            stream.Write(cpu.bytes);
            return;
        }
        var flat = cpu.view(-1);
        long perChunk = ChunkBytes / cpu.ElementSize;
        for (long start = 0; start < flat.shape[0]; start += perChunk)
            stream.Write(flat.narrow(0, start, Math.Min(perChunk, flat.shape[0] - start)).bytes);
    }
}
