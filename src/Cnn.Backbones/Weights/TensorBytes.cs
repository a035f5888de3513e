using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Weights;

/// <summary>Moves raw little-endian bytes between streams and contiguous CPU tensors without per-element work.</summary>
internal static class TensorBytes
{
    private const long ChunkBytes = 1L << 30;

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
