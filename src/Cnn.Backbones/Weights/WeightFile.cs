namespace Cnn.Backbones.Weights;

/// <summary>
/// Opens a weight file whatever its format, deciding by content rather than by extension: a zip archive is a
/// <c>torch.save</c> checkpoint (<see cref="TorchCheckpoint"/>), a file starting with a pickle opcode is a legacy
/// (pre-1.6) torch checkpoint or a bare pickle, which are refused with advice, a file with a safetensors JSON header is
/// <see cref="SafeTensors"/>, a protobuf <c>ModelProto</c> is an ONNX model whose initializers are read
/// (<see cref="Onnx.OnnxFile"/>), and anything else is read as safetensors (whose validation then explains what is wrong).
/// </summary>
public static class WeightFile
{
    /// <summary>The kinds of weight file recognised by content.</summary>
    public enum Format
    {
        /// <summary>A <c>torch.save</c> zip checkpoint (<c>.pth</c>, <c>.pt</c>, <c>.bin</c>, …).</summary>
        TorchZip,
        /// <summary>A pre-1.6 torch checkpoint or another raw pickle stream.</summary>
        Pickle,
        /// <summary>A safetensors file.</summary>
        SafeTensors,
        /// <summary>An ONNX model (<c>.onnx</c>); its graph initializers are the tensors.</summary>
        Onnx,
    }

    /// <summary>Reads every tensor of the file into a new <see cref="StateDict"/> on the CPU.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist (the message gives the path).</exception>
    /// <exception cref="UnsafePickleException">A torch checkpoint references a Python global outside the allow-list.</exception>
    /// <exception cref="WeightFileException">The file is damaged or in an unsupported format.</exception>
    public static StateDict Load(string path) => Detect(path) switch
    {
        Format.TorchZip or Format.Pickle => TorchCheckpoint.Read(path),
        Format.Onnx => Onnx.OnnxFile.Read(path),
        _ => SafeTensors.Read(path),
    };

    /// <summary>
    /// Lists the tensors of the file (name, dtype, shape) in file order. For safetensors only the header is read;
    /// for torch checkpoints only the pickle is read, not the tensor data; for ONNX models the initializers are validated.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="WeightFileException">The file is damaged, refused or unsupported.</exception>
    public static IReadOnlyList<TensorInfo> Inspect(string path) => Detect(path) switch
    {
        Format.TorchZip or Format.Pickle => TorchCheckpoint.Inspect(path),
        Format.Onnx => Onnx.OnnxFile.Inspect(path),
        _ => SafeTensors.Inspect(path),
    };

    /// <summary>Decides the format of a file from its first bytes.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static Format Detect(string path)
    {
        using var stream = SafeTensors.OpenRead(path);
        Span<byte> head = stackalloc byte[9];
        int read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        if (read >= 4 && head[0] == (byte)'P' && head[1] == (byte)'K' && head[2] == 3 && head[3] == 4) return Format.TorchZip;
        // safetensors: an 8-byte little-endian header length that fits the file, then the JSON header's '{'. Checked before the
        // pickle's PROTO opcode, which a header length such as 640 (0x80 0x02 ...) begins with too.
        if (read >= 9 && head[8] == (byte)'{' && System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(head) <= (ulong)Math.Max(0, stream.Length - 8))
            return Format.SafeTensors;
        if (read >= 2 && head[0] == 0x80 && head[1] is >= 2 and <= 5) return Format.Pickle;
        if (Onnx.OnnxFile.CouldBeModel(head[..read])) return Format.Onnx;
        return Format.SafeTensors;
    }
}
