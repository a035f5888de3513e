using System.Globalization;
using Google.Protobuf;
using Onnx;
using static TorchSharp.torch;

namespace Cnn.Backbones.Onnx.Export;

/// <summary>
/// Writes an ONNX <see cref="GraphProto"/> node by node: each call adds one node (or one initializer) and returns the name of
/// the value it produces, so a forward pass is written as a chain of calls. Weights become float32 initializers named by their
/// state-dict keys; small constants (shapes, axes, scalars) get generated names.
/// </summary>
internal sealed class OnnxGraphBuilder
{
    private readonly HashSet<string> _initializers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _counters = new(StringComparer.Ordinal);

    /// <summary>The graph being written.</summary>
    public GraphProto Graph { get; } = new() { Name = "cnn" };

    /// <summary>Adds a node and returns the name of its (first) output.</summary>
    /// <param name="opType">ONNX operator (default domain), e.g. <c>Conv</c>.</param>
    /// <param name="inputs">Input value names; an empty string is an omitted optional input.</param>
    /// <param name="attributes">Attributes made by <see cref="Int(string, long)"/> and its siblings.</param>
    public string Node(string opType, IReadOnlyList<string> inputs, params AttributeProto[] attributes) =>
        NodeWithOutputs(opType, inputs, 1, attributes)[0];

    /// <summary>Adds a node with <paramref name="outputs"/> outputs and returns their names.</summary>
    /// <param name="opType">ONNX operator.</param>
    /// <param name="inputs">Input value names.</param>
    /// <param name="outputs">Number of outputs.</param>
    /// <param name="attributes">Attributes.</param>
    public IReadOnlyList<string> NodeWithOutputs(string opType, IReadOnlyList<string> inputs, int outputs, params AttributeProto[] attributes)
    {
        string name = Unique(opType);
        var node = new NodeProto { OpType = opType, Name = name };
        node.Input.AddRange(inputs);
        var names = Enumerable.Range(0, outputs).Select(i => outputs == 1 ? name : $"{name}:{i.ToString(CultureInfo.InvariantCulture)}").ToArray();
        node.Output.AddRange(names);
        node.Attribute.AddRange(attributes);
        Graph.Node.Add(node);
        return names;
    }

    /// <summary>Adds <paramref name="value"/> as a float32 initializer named <paramref name="name"/> (once; later calls reuse it).</summary>
    /// <param name="name">Initializer name (a state-dict key).</param>
    /// <param name="value">The tensor; copied to the CPU as float32.</param>
    public string Initializer(string name, Tensor value)
    {
        if (!_initializers.Add(name)) return name;
        using var scope = NewDisposeScope();
        var cpu = value.detach().cpu().to_type(ScalarType.Float32).contiguous();
        var proto = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        proto.Dims.AddRange(cpu.shape);
        proto.RawData = ByteString.CopyFrom(cpu.bytes.ToArray());
        Graph.Initializer.Add(proto);
        return name;
    }

    /// <summary>A float32 constant of the given shape (e.g. per-channel scales as [1, C, 1, 1]).</summary>
    /// <param name="values">The values, row-major.</param>
    /// <param name="shape">The shape; null for a 1-D tensor.</param>
    public string Floats(IReadOnlyList<float> values, params long[] shape)
    {
        string name = Unique("const");
        var proto = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        proto.Dims.AddRange(shape.Length == 0 && values.Count != 1 ? [values.Count] : shape);
        proto.FloatData.AddRange(values);
        Graph.Initializer.Add(proto);
        return name;
    }

    /// <summary>A float32 scalar constant.</summary>
    /// <param name="value">The value.</param>
    public string Scalar(float value) => Floats([value]);

    /// <summary>An int64 1-D constant (shapes, axes, indices).</summary>
    /// <param name="values">The values.</param>
    public string Longs(params long[] values)
    {
        string name = Unique("const");
        var proto = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        proto.Dims.Add(values.Length);
        proto.Int64Data.AddRange(values);
        Graph.Initializer.Add(proto);
        return name;
    }

    /// <summary>An int64 scalar constant (a <c>Gather</c> index that drops the axis).</summary>
    /// <param name="value">The value.</param>
    public string LongScalar(long value)
    {
        string name = Unique("const");
        var proto = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        proto.Int64Data.Add(value);
        Graph.Initializer.Add(proto);
        return name;
    }

    /// <summary>An integer attribute.</summary>
    /// <param name="name">Attribute name.</param>
    /// <param name="value">Value.</param>
    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    /// <summary>An integer-list attribute.</summary>
    /// <param name="name">Attribute name.</param>
    /// <param name="values">Values.</param>
    public static AttributeProto Ints(string name, IEnumerable<long> values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    /// <summary>A float attribute.</summary>
    /// <param name="name">Attribute name.</param>
    /// <param name="value">Value.</param>
    public static AttributeProto Float(string name, double value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = (float)value };

    private string Unique(string prefix)
    {
        int n = _counters.GetValueOrDefault(prefix);
        _counters[prefix] = n + 1;
        return $"{prefix}_{n.ToString(CultureInfo.InvariantCulture)}";
    }
}
