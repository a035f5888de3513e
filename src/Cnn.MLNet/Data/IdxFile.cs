using System.Buffers.Binary;
using System.IO.Compression;

namespace Cnn.MLNet.Data;

/// <summary>An unsigned-byte tensor read from or written to an IDX file (the MNIST / Fashion-MNIST format).</summary>
public sealed class IdxArray
{
    /// <summary>Creates an array; <paramref name="data"/> must hold exactly the product of <paramref name="shape"/> bytes.</summary>
    public IdxArray(int[] shape, byte[] data)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(data);
        if (shape.Length is < 1 or > 255) throw new ArgumentException($"An IDX array has 1 to 255 dimensions, got {shape.Length}.", nameof(shape));
        long count = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"Dimensions must not be negative: [{string.Join(", ", shape)}].", nameof(shape));
            count *= d;
            if (count > Array.MaxLength) throw new ArgumentException($"Shape [{string.Join(", ", shape)}] is too large.", nameof(shape));
        }
        if (data.Length != count) throw new ArgumentException($"Shape [{string.Join(", ", shape)}] needs {count} bytes, got {data.Length}.", nameof(data));
        Shape = shape;
        Data = data;
    }

    /// <summary>Dimensions, outermost first (e.g. [60000, 28, 28] for images, [60000] for labels).</summary>
    public int[] Shape { get; }

    /// <summary>The values in row-major order.</summary>
    public byte[] Data { get; }

    /// <summary>Number of items along the first dimension.</summary>
    public int Count => Shape[0];

    /// <summary>Bytes per item (product of the dimensions after the first).</summary>
    public int ItemLength => Shape.Length == 1 ? 1 : Shape.Skip(1).Aggregate(1, (a, b) => a * b);
}

/// <summary>
/// Reads and writes IDX files (big-endian header: two zero bytes, the data type byte, the dimension count, one int32 per
/// dimension; then the data), raw or gzip-compressed. Only the unsigned-byte type (0x08) is supported.
/// </summary>
public static class IdxFile
{
    private const byte UnsignedByte = 0x08;

    /// <summary>Reads an IDX file; gzip is detected from the content, not the name.</summary>
    /// <exception cref="InvalidDataException">The file is not a valid unsigned-byte IDX file; the message names it and says why.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static IdxArray Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"IDX file '{path}' does not exist.", path);
        using var stream = File.OpenRead(path);
        return Read(stream, path);
    }

    /// <summary>Reads an IDX array from a stream (raw or gzip-compressed).</summary>
    /// <param name="stream">The stream, read to its end.</param>
    /// <param name="name">Name used in errors.</param>
    /// <exception cref="InvalidDataException">The content is not a valid unsigned-byte IDX array.</exception>
    public static IdxArray Read(Stream stream, string name)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var buffered = new BufferedStream(stream, 1 << 16);
        Span<byte> sniff = stackalloc byte[2];
        int got = buffered.ReadAtLeast(sniff, 2, throwOnEndOfStream: false);
        // Re-read from the start through a small prefix stream, since BufferedStream may not seek.
        Stream content = new PrefixStream(sniff[..got].ToArray(), buffered);
        if (got == 2 && sniff[0] == 0x1f && sniff[1] == 0x8b) content = new GZipStream(content, CompressionMode.Decompress);
        try
        {
            return ReadCore(content, name);
        }
        catch (InvalidDataException ex) when (!ex.Message.StartsWith("IDX file", StringComparison.Ordinal))
        {
            throw new InvalidDataException($"IDX file '{name}': the gzip data is corrupt ({ex.Message}).", ex);
        }
    }

    private static IdxArray ReadCore(Stream content, string name)
    {
        Span<byte> header = stackalloc byte[4];
        if (content.ReadAtLeast(header, 4, throwOnEndOfStream: false) < 4)
            throw new InvalidDataException($"IDX file '{name}': too short for the 4-byte magic number.");
        if (header[0] != 0 || header[1] != 0)
            throw new InvalidDataException($"IDX file '{name}': bad magic number 0x{header[0]:X2}{header[1]:X2}{header[2]:X2}{header[3]:X2} (expected 0x0000TTDD: two zero bytes, type, dimension count). Not an IDX file?");
        if (header[2] != UnsignedByte)
            throw new InvalidDataException($"IDX file '{name}': data type 0x{header[2]:X2} ({TypeName(header[2])}) is not supported; only unsigned byte (0x08) is.");
        int rank = header[3];
        if (rank == 0) throw new InvalidDataException($"IDX file '{name}': the dimension count is 0.");
        var dims = new byte[4 * rank];
        if (content.ReadAtLeast(dims, dims.Length, throwOnEndOfStream: false) < dims.Length)
            throw new InvalidDataException($"IDX file '{name}': truncated header ({rank} dimensions announced).");
        var shape = new int[rank];
        long count = 1;
        for (int d = 0; d < rank; d++)
        {
            shape[d] = BinaryPrimitives.ReadInt32BigEndian(dims.AsSpan(4 * d));
            if (shape[d] < 0) throw new InvalidDataException($"IDX file '{name}': dimension {d} is negative ({shape[d]}).");
            count *= shape[d];
            if (count > Array.MaxLength) throw new InvalidDataException($"IDX file '{name}': shape [{string.Join(", ", shape.Take(d + 1))}…] is too large.");
        }
        // The header's count is not trusted: the buffer grows only as data arrives, so a header announcing gigabytes over a short
        // file allocates about what the file holds (gzip included), never what it claims.
        var data = new byte[Math.Min(count, 1 << 16)];
        int read = 0;
        while (true)
        {
            if (read == data.Length)
            {
                if (read == count) break;
                Array.Resize(ref data, (int)Math.Min(count, 2L * data.Length));
            }
            int n = content.Read(data, read, data.Length - read);
            if (n == 0) break;
            read += n;
        }
        if (read < count)
            throw new InvalidDataException($"IDX file '{name}': shape [{string.Join(", ", shape)}] needs {count} data bytes but only {read} are present (truncated file?).");
        Span<byte> extra = stackalloc byte[1];
        if (content.Read(extra) != 0)
            throw new InvalidDataException($"IDX file '{name}': more data than shape [{string.Join(", ", shape)}] describes (trailing bytes).");
        return new IdxArray(shape, data);
    }

    /// <summary>Writes an IDX file; gzip-compressed when <paramref name="gzip"/> is true, or when null and the name ends in <c>.gz</c>.</summary>
    public static void Write(string path, IdxArray array, bool? gzip = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var file = File.Create(path);
        if (gzip ?? path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase))
        {
            using var zip = new GZipStream(file, CompressionLevel.SmallestSize);
            Write(zip, array);
        }
        else
        {
            Write(file, array);
        }
    }

    /// <summary>Writes an uncompressed IDX array to a stream.</summary>
    public static void Write(Stream stream, IdxArray array)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(array);
        var header = new byte[4 + 4 * array.Shape.Length];
        header[2] = UnsignedByte;
        header[3] = (byte)array.Shape.Length;
        for (int d = 0; d < array.Shape.Length; d++) BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4 + 4 * d), array.Shape[d]);
        stream.Write(header);
        stream.Write(array.Data);
    }

    private static string TypeName(byte type) => type switch
    {
        0x09 => "signed byte", 0x0B => "int16", 0x0C => "int32", 0x0D => "float32", 0x0E => "float64", _ => "unknown",
    };

    /// <summary>Replays a few already-read bytes before the rest of a stream.</summary>
    private sealed class PrefixStream(byte[] prefix, Stream rest) : Stream
    {
        private int _position;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            if (_position < prefix.Length)
            {
                int n = Math.Min(buffer.Length, prefix.Length - _position);
                prefix.AsSpan(_position, n).CopyTo(buffer);
                _position += n;
                return n;
            }
            return rest.Read(buffer);
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
