using Cnn.Backbones.Weights;
using Onnx;

namespace Cnn.Backbones.Onnx;

/// <summary>What a layer with weights is: a convolution (possibly with the BatchNorm that consumes it), a BatchNorm or LayerNorm on its own, or a fully-connected layer.</summary>
internal enum LayerKind { Conv, BatchNorm, Linear, LayerNorm }

/// <summary>The four tensors of an ONNX BatchNormalization node and its epsilon.</summary>
internal sealed record OnnxNorm(string NodeName, string Scale, string Bias, string Mean, string Var, double Epsilon);

/// <summary>
/// One ONNX layer with weights, found by walking the graph along the data flow: a Conv (with the BatchNormalization that alone
/// consumes its output, when there is one), a standalone BatchNormalization, or a Gemm / MatMul (+ the Add of its bias).
/// </summary>
internal sealed record OnnxLayer(LayerKind Kind, string NodeName, string Input, string Output, string? Weight, string? Bias, OnnxNorm? Norm,
    bool TransposeWeight, float Alpha, float Beta)
{
    public string Describe(OnnxGraph graph) => Kind switch
    {
        LayerKind.BatchNorm => $"BatchNormalization '{NodeName}' [{graph.Shape(Norm!.Scale)[0]}]",
        LayerKind.LayerNorm => $"LayerNorm '{NodeName}' {Text(graph.Shape(Weight!))}",
        _ => $"{(Kind == LayerKind.Conv ? "Conv" : "Gemm/MatMul")} '{NodeName}' weight '{Weight}' {Text(graph.Shape(Weight!))}" +
             (Norm is null ? "" : $" + BatchNormalization '{Norm.NodeName}'"),
    };

    public static string Text(IReadOnlyList<long> shape) => "[" + string.Join(", ", shape) + "]";
}

/// <summary>The parts of an ONNX model the importer reads: constant tensors, the data flow, the layers with weights, the input and output.</summary>
internal sealed class OnnxGraph
{
    private readonly Dictionary<string, TensorProto> _constants = new(StringComparer.Ordinal);

    public OnnxGraph(string path)
    {
        Path = path;
        Model = OnnxFile.Parse(path);
        var graph = Model.Graph;
        foreach (var initializer in graph.Initializer) _constants[initializer.Name] = initializer;
        // Constant nodes, and Identity nodes of constants (torch.onnx.export shares equal initializers, e.g. zero biases, through them).
        foreach (var node in graph.Node)
        {
            if (node.OpType == "Constant" && node.Output.Count == 1 && node.Attribute.FirstOrDefault(a => a.Name == "value")?.T is { } value)
                _constants[node.Output[0]] = value;
            else if (node.OpType == "Identity" && node.Input.Count == 1 && node.Output.Count == 1 && _constants.TryGetValue(node.Input[0], out var source))
                _constants[node.Output[0]] = source;
        }
        var consumers = new Dictionary<string, List<NodeProto>>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
            foreach (var input in node.Input)
                if (input.Length > 0)
                {
                    if (!consumers.TryGetValue(input, out var list)) consumers[input] = list = new List<NodeProto>();
                    list.Add(node);
                }
        var inputs = graph.Input.Where(i => !_constants.ContainsKey(i.Name)).ToList();
        if (inputs.Count != 1)
            throw new WeightFileException(path, $"{path}: the ONNX graph has {inputs.Count} inputs that are not initializers ({string.Join(", ", inputs.Select(i => i.Name))}); an image model has one.");
        Input = inputs[0].Name;
        InputDims = inputs[0].Type?.TensorType?.Shape?.Dim.Select(d => d.HasDimValue ? d.DimValue : -1).ToArray() ?? Array.Empty<long>();
        Output = graph.Output[0].Name;
        OutputDims = graph.Output[0].Type?.TensorType?.Shape?.Dim.Select(d => d.HasDimValue ? d.DimValue : -1).ToArray() ?? Array.Empty<long>();
        Layers = FindLayers(graph, consumers);
    }

    public string Path { get; }

    public ModelProto Model { get; }

    /// <summary>The image input's name and dimensions (-1 where symbolic).</summary>
    public string Input { get; }

    public long[] InputDims { get; }

    /// <summary>The first graph output's name and dimensions (-1 where symbolic).</summary>
    public string Output { get; }

    public long[] OutputDims { get; }

    /// <summary>Layers with weights, in graph (topological) order.</summary>
    public IReadOnlyList<OnnxLayer> Layers { get; }

    public bool IsConstant(string name) => _constants.ContainsKey(name);

    public IReadOnlyList<long> Shape(string name) => _constants[name].Dims;

    public TorchSharp.torch.Tensor Tensor(string name) => OnnxFile.ToTensor(_constants[name], Path);

    private List<OnnxLayer> FindLayers(GraphProto graph, Dictionary<string, List<NodeProto>> consumers)
    {
        var layers = new List<OnnxLayer>();
        var absorbed = new HashSet<NodeProto>();
        NodeProto? OnlyConsumer(string output, string opType) =>
            consumers.TryGetValue(output, out var list) && list.Count == 1 && list[0].OpType == opType
            && !graph.Output.Any(o => o.Name == output) ? list[0] : null;

        foreach (var node in graph.Node)
        {
            if (absorbed.Contains(node)) continue;
            switch (node.OpType)
            {
                case "Conv":
                {
                    string weight = ConstantInput(node, 1, "weight");
                    string? bias = node.Input.Count > 2 && node.Input[2].Length > 0 ? ConstantInput(node, 2, "bias") : null;
                    var bn = OnlyConsumer(node.Output[0], "BatchNormalization");
                    if (bn is not null && bn.Input[0] != node.Output[0]) bn = null;
                    if (bn is not null) absorbed.Add(bn);
                    layers.Add(new OnnxLayer(LayerKind.Conv, NodeName(node), node.Input[0], (bn ?? node).Output[0], weight, bias, bn is null ? null : Norm(bn), false, 1, 1));
                    break;
                }
                case "BatchNormalization":
                    layers.Add(new OnnxLayer(LayerKind.BatchNorm, NodeName(node), node.Input[0], node.Output[0], null, null, Norm(node), false, 1, 1));
                    break;
                case "LayerNormalization":
                {
                    if (Int(node, "axis", -1) != -1) throw Unsupported(node, "a LayerNormalization over other axes than the last");
                    string? bias = node.Input.Count > 2 && node.Input[2].Length > 0 ? ConstantInput(node, 2, "bias") : null;
                    layers.Add(new OnnxLayer(LayerKind.LayerNorm, NodeName(node), node.Input[0], node.Output[0], ConstantInput(node, 1, "scale"), bias, null, false, 1, 1));
                    break;
                }
                case "ReduceMean" when DecomposedLayerNorm(node, consumers) is { } norm:
                    layers.Add(norm);
                    break;
                case "Gemm":
                {
                    if (Int(node, "transA", 0) != 0)
                        throw Unsupported(node, "Gemm with transA=1");
                    string weight = ConstantInput(node, 1, "weight");
                    string? bias = node.Input.Count > 2 && node.Input[2].Length > 0 ? ConstantInput(node, 2, "bias") : null;
                    layers.Add(new OnnxLayer(LayerKind.Linear, NodeName(node), node.Input[0], node.Output[0], weight, bias, null,
                        Int(node, "transB", 0) == 0, Float(node, "alpha", 1), Float(node, "beta", 1)));
                    break;
                }
                case "MatMul" when node.Input.Count == 2 && IsConstant(node.Input[1]) && _constants[node.Input[1]].Dims.Count == 2:
                {
                    string? bias = null;
                    var add = OnlyConsumer(node.Output[0], "Add");
                    if (add is not null)
                    {
                        string other = add.Input[0] == node.Output[0] ? add.Input[1] : add.Input[0];
                        if (IsConstant(other) && _constants[other].Dims.Count == 1) { bias = other; absorbed.Add(add); }
                        else add = null;
                    }
                    layers.Add(new OnnxLayer(LayerKind.Linear, NodeName(node), node.Input[0], (add ?? node).Output[0], node.Input[1], bias, null, true, 1, 1));
                    break;
                }
            }
        }
        return layers;
    }

    /// <summary>
    /// A LayerNorm over the last axis as exporters before opset 17 write it: ReduceMean → Sub → Pow → ReduceMean → Add(ε) → Sqrt →
    /// Div → Mul(weight) → Add(bias), starting at the first ReduceMean. Null when the nodes do not have that shape.
    /// </summary>
    private OnnxLayer? DecomposedLayerNorm(NodeProto mean, Dictionary<string, List<NodeProto>> consumers)
    {
        if (mean.Attribute.FirstOrDefault(a => a.Name == "axes") is not { Ints: [-1] }) return null;
        string x = mean.Input[0];
        IEnumerable<NodeProto> Next(string value) => consumers.TryGetValue(value, out var list) ? list : Enumerable.Empty<NodeProto>();
        var sub = Next(mean.Output[0]).SingleOrDefault(n => n.OpType == "Sub" && n.Input[0] == x && n.Input[1] == mean.Output[0]);
        var div = sub is null ? null : Next(sub.Output[0]).SingleOrDefault(n => n.OpType == "Div" && n.Input[0] == sub.Output[0]);
        if (sub is null || div is null || !Next(sub.Output[0]).Any(n => n.OpType == "Pow")) return null;
        var mul = Next(div.Output[0]).SingleOrDefault(n => n.OpType == "Mul");
        string? weight = mul?.Input.FirstOrDefault(i => i != div.Output[0] && IsConstant(i));
        if (mul is null || weight is null || _constants[weight].Dims.Count != 1) return null;
        var add = Next(mul.Output[0]).SingleOrDefault(n => n.OpType == "Add");
        string? bias = add?.Input.FirstOrDefault(i => i != mul.Output[0] && IsConstant(i));
        if (bias is not null && _constants[bias].Dims.Count != 1) bias = null;
        string output = bias is null ? mul.Output[0] : add!.Output[0];
        return new OnnxLayer(LayerKind.LayerNorm, NodeName(mean), x, output, weight, bias, null, false, 1, 1);
    }

    /// <summary>
    /// Constants that feed elementwise Mul / Add / Sub / Div nodes outside the layers (ConvNeXt's layer scale), in graph order, by
    /// the name the node uses.
    /// </summary>
    public IReadOnlyList<string> LooseConstants()
    {
        var inLayers = Layers.SelectMany(l => new[] { l.Weight, l.Bias, l.Norm?.Scale, l.Norm?.Bias, l.Norm?.Mean, l.Norm?.Var })
            .Where(n => n is not null).ToHashSet(StringComparer.Ordinal);
        return Model.Graph.Node.Where(n => n.OpType is "Mul" or "Add" or "Sub" or "Div")
            .SelectMany(n => n.Input).Where(i => IsConstant(i) && !inLayers.Contains(i) && _constants[i].Dims.Count > 0).Distinct().ToList();
    }

    private OnnxNorm Norm(NodeProto node)
    {
        if (node.Input.Count < 5)
            throw Unsupported(node, "a BatchNormalization without its four statistics inputs");
        return new OnnxNorm(NodeName(node), ConstantInput(node, 1, "scale"), ConstantInput(node, 2, "bias"),
            ConstantInput(node, 3, "mean"), ConstantInput(node, 4, "variance"), Float(node, "epsilon", 1e-5f));
    }

    private string ConstantInput(NodeProto node, int index, string role)
    {
        string name = node.Input[index];
        if (!IsConstant(name))
            throw new WeightFileException(Path,
                $"{Path}: ONNX node '{NodeName(node)}' ({node.OpType}) takes its {role} from '{name}', which is computed in the graph, not an initializer; " +
                "only models whose weights are constants can be imported.", name);
        return name;
    }

    private WeightFileException Unsupported(NodeProto node, string what) =>
        new(Path, $"{Path}: ONNX node '{NodeName(node)}' is {what}, which the importer does not map.");

    private static string NodeName(NodeProto node) => node.Name.Length > 0 ? node.Name : $"{node.OpType}→{node.Output.FirstOrDefault()}";

    private static long Int(NodeProto node, string name, long fallback) =>
        node.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.I : fallback;

    private static float Float(NodeProto node, string name, float fallback) =>
        node.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.F : fallback;
}
