using System.Buffers.Binary;
using Cnn.Backbones.Weights;
using Google.Protobuf;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Onnx;

/// <summary>
/// Reads the initializers of an ONNX model (<c>.onnx</c>, a protobuf <c>ModelProto</c>) as weights. Only the protobuf message is
/// parsed (OnnxSharp's classes, generated from the official <c>onnx.proto</c>); nothing in the model executes. Validation is strict:
/// a truncated file, an external-data reference, a data length that does not match the shape, or an element type this library does
/// not store fail with a <see cref="WeightFileException"/> naming the file and the tensor.
/// </summary>
public static class OnnxFile
{
    // ONNX TensorProto.DataType codes of the element types that safetensors and this library store.
    private static readonly (int Code, string Name, ScalarType Type)[] Types =
    {
        (1, "FLOAT", ScalarType.Float32),
        (2, "UINT8", ScalarType.Byte),
        (3, "INT8", ScalarType.Int8),
        (5, "INT16", ScalarType.Int16),
        (6, "INT32", ScalarType.Int32),
        (7, "INT64", ScalarType.Int64),
        (9, "BOOL", ScalarType.Bool),
        (10, "FLOAT16", ScalarType.Float16),
        (11, "DOUBLE", ScalarType.Float64),
        (16, "BFLOAT16", ScalarType.BFloat16),
    };

    private static readonly Dictionary<int, string> OtherTypeNames = new()
    {
        [0] = "UNDEFINED", [4] = "UINT16", [8] = "STRING", [12] = "UINT32", [13] = "UINT64", [14] = "COMPLEX64", [15] = "COMPLEX128",
        [17] = "FLOAT8E4M3FN", [18] = "FLOAT8E4M3FNUZ", [19] = "FLOAT8E5M2", [20] = "FLOAT8E5M2FNUZ", [21] = "UINT4", [22] = "INT4",
    };

    /// <summary>
    /// True when <paramref name="head"/> (the first bytes of a file) can start a serialized ONNX <c>ModelProto</c>: its first byte is
    /// the protobuf tag of one of ModelProto's fields (ir_version, producer_name, producer_version, domain, model_version,
    /// doc_string, graph, opset_import, metadata_props). Safetensors files are told apart first by their JSON header.
    /// </summary>
    /// <param name="head">The file's first bytes.</param>
    public static bool CouldBeModel(ReadOnlySpan<byte> head) =>
        head.Length >= 2 && head[0] is 0x08 or 0x12 or 0x1A or 0x22 or 0x28 or 0x32 or 0x3A or 0x42 or 0x72;

    /// <summary>Reads every initializer of the model's main graph into a new <see cref="StateDict"/> (CPU tensors, file order).</summary>
    /// <param name="path">The <c>.onnx</c> file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="WeightFileException">The file is not a complete ONNX model, or an initializer is invalid or unsupported.</exception>
    public static StateDict Read(string path)
    {
        var model = Parse(path);
        Native.TorchRuntime.EnsureLoaded();
        var result = new StateDict();
        try
        {
            foreach (var initializer in model.Graph.Initializer)
                result.Add(initializer.Name, ToTensor(initializer, path));
            if (model.ProducerName.Length > 0) result.Metadata["onnx.producer"] = (model.ProducerName + " " + model.ProducerVersion).Trim();
        }
        catch
        {
            result.Dispose();
            throw;
        }
        return result;
    }

    /// <summary>Lists the initializers (name, dtype, shape) after validating them, without creating tensors.</summary>
    /// <param name="path">The <c>.onnx</c> file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="WeightFileException">The file is not a complete ONNX model, or an initializer is invalid or unsupported.</exception>
    public static IReadOnlyList<TensorInfo> Inspect(string path)
    {
        var model = Parse(path);
        return model.Graph.Initializer.Select(t => Describe(t, path)).ToList();
    }

    /// <summary>Parses and checks the model's outline: a graph with outputs and an opset (a file cut short loses those).</summary>
    internal static ModelProto Parse(string path)
    {
        ModelProto model;
        using (var stream = SafeTensors.OpenRead(path))
        {
            try
            {
                model = ModelProto.Parser.ParseFrom(stream);
            }
            catch (InvalidProtocolBufferException ex)
            {
                throw new WeightFileException(path,
                    $"{path}: not a complete ONNX model: the protobuf message is damaged or the file was cut short ({ex.Message}). " +
                    "Copy or export the model again.", inner: ex);
            }
        }
        if (model.Graph is null)
            throw new WeightFileException(path, $"{path}: the ONNX model has no graph (a truncated file or not an ONNX model).");
        if (model.Graph.Output.Count == 0 || model.OpsetImport.Count == 0)
            throw new WeightFileException(path,
                $"{path}: the ONNX model has no graph outputs or no opset_import, which every exported model has: the file was probably cut short. " +
                "Copy or export the model again.");
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var initializer in model.Graph.Initializer)
        {
            if (initializer.Name.Length == 0)
                throw new WeightFileException(path, $"{path}: an initializer of the ONNX graph has no name.");
            if (!names.Add(initializer.Name))
                throw new WeightFileException(path, $"{path}: the initializer name '{initializer.Name}' appears twice in the ONNX graph.", initializer.Name);
        }
        return model;
    }

    /// <summary>The tensor's name, element type and shape, after checking that its data is stored inline and has the right length.</summary>
    internal static TensorInfo Describe(TensorProto proto, string path)
    {
        string name = proto.Name.Length > 0 ? proto.Name : "(unnamed)";
        string Where() => $"{path}: ONNX tensor '{name}'";
        if (proto.DataLocation == TensorProto.Types.DataLocation.External || proto.ExternalData.Count > 0)
        {
            string location = proto.ExternalData.FirstOrDefault(e => e.Key == "location")?.Value ?? "another file";
            throw new WeightFileException(path,
                $"{Where()}: its data is stored outside the model (external data in '{location}'), which is not read. Save the model with its " +
                "data inside, e.g. onnx.save(onnx.load(path), path2, save_as_external_data=False) in Python.", name);
        }
        if (proto.Segment is not null)
            throw new WeightFileException(path, $"{Where()}: segmented tensors (TensorProto.segment) are not supported; save the model again as one piece.", name);
        var type = Types.FirstOrDefault(t => t.Code == proto.DataType);
        if (type.Name is null)
        {
            string typeName = OtherTypeNames.GetValueOrDefault(proto.DataType, "unknown");
            throw new WeightFileException(path,
                $"{Where()}: element type {typeName} ({proto.DataType}) is not supported; supported: {string.Join(", ", Types.Select(t => t.Name))}. " +
                "Convert the tensor (e.g. to FLOAT) before importing.", name);
        }
        long numel = 1;
        foreach (long d in proto.Dims)
        {
            if (d < 0) throw new WeightFileException(path, $"{Where()}: negative dimension {d} in shape [{string.Join(", ", proto.Dims)}].", name);
            try
            {
                numel = checked(numel * d);
            }
            catch (OverflowException)
            {
                throw new WeightFileException(path, $"{Where()}: shape [{string.Join(", ", proto.Dims)}] has more elements than can be addressed. The file is damaged.", name);
            }
        }
        int size = DTypes.ElementSize(type.Type);
        var (field, count) = StoredValues(proto);
        if (proto.RawData.Length > 0)
        {
            if (field is not null)
                throw new WeightFileException(path, $"{Where()}: it has both raw_data and {field}; an ONNX tensor stores its values in one of them.", name);
            // Compared by division first: numel × size can overflow for a damaged shape.
            if (numel > proto.RawData.Length / size || proto.RawData.Length != numel * size)
                throw new WeightFileException(path,
                    $"{Where()}: raw_data has {proto.RawData.Length} bytes, but shape [{string.Join(", ", proto.Dims)}] of {type.Name} needs " +
                    (numel <= long.MaxValue / size ? $"{numel} × {size} = {numel * size}" : $"{numel} × {size}, more than can be addressed") + ". The file is damaged.", name);
        }
        else
        {
            string expected = TypedField(proto.DataType);
            if (field is not null && field != expected)
                throw new WeightFileException(path, $"{Where()}: a {type.Name} tensor stores its values in {expected}, but this one uses {field}.", name);
            if (count != numel)
                throw new WeightFileException(path,
                    $"{Where()}: {expected} has {count} values, but shape [{string.Join(", ", proto.Dims)}] needs {numel}. The file is damaged.", name);
        }
        return new TensorInfo(name, type.Type, proto.Dims.ToArray());
    }

    /// <summary>Converts an initializer (or a Constant's value) into a new CPU tensor after <see cref="Describe"/>'s checks.</summary>
    internal static Tensor ToTensor(TensorProto proto, string path)
    {
        TensorBytes.EnsureLittleEndianHost();
        var info = Describe(proto, path);
        byte[] bytes = proto.RawData.Length > 0 ? proto.RawData.ToByteArray() : TypedBytes(proto, info, path);
        var tensor = TensorBytes.Empty(info.Shape.ToArray(), info.DType);
        if (bytes.Length > 0) bytes.CopyTo(tensor.bytes);
        return tensor;
    }

    private static (string? Field, long Count) StoredValues(TensorProto proto)
    {
        if (proto.FloatData.Count > 0) return ("float_data", proto.FloatData.Count);
        if (proto.Int32Data.Count > 0) return ("int32_data", proto.Int32Data.Count);
        if (proto.Int64Data.Count > 0) return ("int64_data", proto.Int64Data.Count);
        if (proto.DoubleData.Count > 0) return ("double_data", proto.DoubleData.Count);
        if (proto.Uint64Data.Count > 0) return ("uint64_data", proto.Uint64Data.Count);
        if (proto.StringData.Count > 0) return ("string_data", proto.StringData.Count);
        return (null, 0);
    }

    // The typed field each supported type uses when raw_data is empty (onnx.proto's comments on TensorProto).
    private static string TypedField(int code) => code switch
    {
        1 => "float_data",
        7 => "int64_data",
        11 => "double_data",
        _ => "int32_data", // UINT8, INT8, INT16, INT32, BOOL, FLOAT16 and BFLOAT16 (their bits in the low 16)
    };

    private static byte[] TypedBytes(TensorProto proto, TensorInfo info, string path)
    {
        int size = DTypes.ElementSize(info.DType);
        var bytes = new byte[checked((int)(info.Numel * size))];
        var span = bytes.AsSpan();
        switch (proto.DataType)
        {
            case 1:
                for (int i = 0; i < proto.FloatData.Count; i++) BinaryPrimitives.WriteSingleLittleEndian(span[(i * 4)..], proto.FloatData[i]);
                break;
            case 7:
                for (int i = 0; i < proto.Int64Data.Count; i++) BinaryPrimitives.WriteInt64LittleEndian(span[(i * 8)..], proto.Int64Data[i]);
                break;
            case 11:
                for (int i = 0; i < proto.DoubleData.Count; i++) BinaryPrimitives.WriteDoubleLittleEndian(span[(i * 8)..], proto.DoubleData[i]);
                break;
            default:
                var (min, max) = proto.DataType switch
                {
                    2 => (0L, 255L),
                    3 => (sbyte.MinValue, sbyte.MaxValue),
                    5 => (short.MinValue, short.MaxValue),
                    9 => (0L, 1L),
                    10 or 16 => (0L, ushort.MaxValue),
                    _ => ((long)int.MinValue, (long)int.MaxValue),
                };
                for (int i = 0; i < proto.Int32Data.Count; i++)
                {
                    int value = proto.Int32Data[i];
                    if (value < min || value > max)
                        throw new WeightFileException(path,
                            $"{path}: ONNX tensor '{info.Name}': int32_data[{i}] = {value} is out of range for {DTypes.Name(info.DType)} ({min}..{max}). The file is damaged.", info.Name);
                    switch (size)
                    {
                        case 1: span[i] = (byte)value; break;
                        case 2: BinaryPrimitives.WriteInt16LittleEndian(span[(i * 2)..], unchecked((short)value)); break;
                        default: BinaryPrimitives.WriteInt32LittleEndian(span[(i * 4)..], value); break;
                    }
                }
                break;
        }
        return bytes;
    }
}
