using static TorchSharp.torch;

namespace Cnn.Backbones.Weights;

/// <summary>Names and sizes of the tensor element types that weight files use.</summary>
internal static class DTypes
{
    private static readonly (ScalarType Type, string SafeTensors, string Torch, int Size)[] Table =
    {
        (ScalarType.Float32, "F32", "float32", 4),
        (ScalarType.Float16, "F16", "float16", 2),
        (ScalarType.BFloat16, "BF16", "bfloat16", 2),
        (ScalarType.Float64, "F64", "float64", 8),
        (ScalarType.Int64, "I64", "int64", 8),
        (ScalarType.Int32, "I32", "int32", 4),
        (ScalarType.Int16, "I16", "int16", 2),
        (ScalarType.Int8, "I8", "int8", 1),
        (ScalarType.Byte, "U8", "uint8", 1),
        (ScalarType.Bool, "BOOL", "bool", 1),
    };

    /// <summary>The PyTorch name of the type, e.g. <c>float32</c>, <c>bfloat16</c>, <c>int64</c>.</summary>
    public static string Name(ScalarType type) => Find(type).Torch;

    /// <summary>The safetensors name of the type, e.g. <c>F32</c>, <c>BF16</c>, <c>I64</c>.</summary>
    /// <exception cref="NotSupportedException">safetensors support for that type is not implemented here.</exception>
    public static string SafeTensorsName(ScalarType type) => Find(type).SafeTensors;

    /// <summary>Bytes per element.</summary>
    public static int ElementSize(ScalarType type) => Find(type).Size;

    /// <summary>The type of a safetensors dtype name (<c>F32</c>, <c>F16</c>, <c>BF16</c>, <c>F64</c>, <c>I64</c>, <c>I32</c>, <c>I16</c>, <c>I8</c>, <c>U8</c>, <c>BOOL</c>).</summary>
    public static bool TryParseSafeTensors(string name, out ScalarType type)
    {
        foreach (var entry in Table)
            if (entry.SafeTensors == name) { type = entry.Type; return true; }
        type = default;
        return false;
    }

    /// <summary>The safetensors dtype names this library reads and writes.</summary>
    public static IEnumerable<string> SafeTensorsNames => Table.Select(e => e.SafeTensors);

    private static (ScalarType Type, string SafeTensors, string Torch, int Size) Find(ScalarType type)
    {
        foreach (var entry in Table)
            if (entry.Type == type) return entry;
        throw new NotSupportedException($"Tensors of type {type} cannot be stored in a weight file by this library; " +
                                        $"supported: {string.Join(", ", Table.Select(e => e.Torch))}.");
    }
}
