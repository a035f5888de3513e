using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Onnx.Export;

/// <summary>
/// The state of one export: the graph being written, the module tree's names (initializers are named by state-dict keys and
/// errors name the module's path), what is known about value shapes, and the operations our modules write their forward
/// passes with. <see cref="Emit"/> writes any module: an <see cref="IOnnxExportable"/> writes itself, TorchSharp's built-in
/// modules are written here, anything else is a <see cref="NotSupportedException"/> naming the module's type and path.
/// </summary>
internal sealed class OnnxExportContext
{
    private readonly Dictionary<nn.Module, string> _paths = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<string, long[]> _shapes = new(StringComparer.Ordinal);

    /// <summary>Creates the context for <paramref name="root"/>.</summary>
    /// <param name="root">The model being exported; its named modules give the paths.</param>
    /// <param name="inputShape">The exported input's shape [N, C, H, W] (N as built; H and W are fixed unless <paramref name="dynamicSize"/>).</param>
    /// <param name="dynamicSize">Whether height and width are symbolic; modules that need a fixed size then fail clearly.</param>
    public OnnxExportContext(nn.Module root, IReadOnlyList<long> inputShape, bool dynamicSize)
    {
        ArgumentNullException.ThrowIfNull(root);
        Root = root;
        InputShape = inputShape.ToArray();
        DynamicSize = dynamicSize;
        _paths[root] = "";
        foreach (var (name, module) in root.named_modules()) _paths.TryAdd(module, name);
    }

    /// <summary>The graph being written.</summary>
    public OnnxGraphBuilder Builder { get; } = new();

    /// <summary>The model being exported.</summary>
    public nn.Module Root { get; }

    /// <summary>Shape [N, C, H, W] of the input the graph is written for.</summary>
    public IReadOnlyList<long> InputShape { get; }

    /// <summary>True when the height and width of the input are symbolic.</summary>
    public bool DynamicSize { get; }

    /// <summary>
    /// Shape of the backbone's feature output at <see cref="InputShape"/> (measured by the exporter), or null when the size is
    /// dynamic; heads that pool to a fixed grid need it.
    /// </summary>
    public IReadOnlyList<long>? FeatureShape { get; init; }

    /// <summary>
    /// Packed multi-head self-attention in PyTorch's <c>nn.MultiheadAttention</c> layout (<c>in_proj_weight</c> [3D, D],
    /// <c>in_proj_bias</c>, then <paramref name="outProj"/>) as ONNX: one MatMul for q, k and v, scaled dot products, softmax, the
    /// output projection. The batch and sequence axes stay symbolic (Reshape's 0 copies them).
    /// </summary>
    /// <param name="owner">The attention module (names its parameters).</param>
    /// <param name="input">The tokens [N, L, D].</param>
    /// <param name="inProjWeight">The packed input projection [3D, D].</param>
    /// <param name="inProjBias">Its bias [3D].</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="outProj">The output projection.</param>
    internal string PackedSelfAttention(nn.Module owner, string input, Tensor inProjWeight, Tensor inProjBias, int heads, nn.Module outProj)
    {
        long d = inProjWeight.shape[1], hd = d / heads;
        using var transposed = inProjWeight.t();
        var projected = Add(Op("MatMul", [input, Parameter(owner, "in_proj_weight.T", transposed)]), Parameter(owner, "in_proj_bias", inProjBias));
        var qkv = Transpose(Reshape(projected, 0, 0, 3, heads, hd), 2, 0, 3, 1, 4);
        string Part(long i) => Op("Gather", [qkv, Builder.LongScalar(i)], OnnxGraphBuilder.Int("axis", 0));
        var q = Mul(Part(0), Builder.Scalar((float)(1.0 / Math.Sqrt(hd))));
        var scores = Op("MatMul", [q, Transpose(Part(1), 0, 1, 3, 2)]);
        var attention = Op("Softmax", [scores], OnnxGraphBuilder.Int("axis", -1));
        var output = Reshape(Transpose(Op("MatMul", [attention, Part(2)]), 0, 2, 1, 3), 0, 0, d);
        return Emit(outProj, output);
    }

    /// <summary>Writes <paramref name="module"/>'s eval-mode forward pass on <paramref name="input"/>; returns its output value.</summary>
    /// <param name="module">A module of the exported model.</param>
    /// <param name="input">Name of the input value.</param>
    /// <exception cref="NotSupportedException">The module (or one inside it) cannot be written as ONNX; the message names it.</exception>
    public string Emit(nn.Module module, string input)
    {
        ArgumentNullException.ThrowIfNull(module);
        if (module is IOnnxExportable exportable) return exportable.ExportOnnx(this, input);
        return BuiltInModules.Emit(this, module, input)
            ?? throw new NotSupportedException(
                $"ONNX export does not support the module '{PathOf(module)}' of type {module.GetType().FullName}; " +
                "implement IOnnxExportable on it, or export a model without it.");
    }

    /// <summary>Writes <paramref name="modules"/> one after another, each on the previous one's output.</summary>
    /// <param name="input">Name of the input value.</param>
    /// <param name="modules">The modules in forward order.</param>
    public string EmitAll(string input, IEnumerable<nn.Module> modules)
    {
        var h = input;
        foreach (var module in modules) h = Emit(module, h);
        return h;
    }

    /// <summary>The dotted path of <paramref name="module"/> in the model (its state-dict prefix), or its type name when it is not part of the model.</summary>
    /// <param name="module">A module.</param>
    public string PathOf(nn.Module module) => _paths.TryGetValue(module, out var path) ? (path.Length == 0 ? "(model)" : path) : module.GetName();

    /// <summary>Adds the parameter or buffer <paramref name="name"/> of <paramref name="owner"/> as an initializer named by its state-dict key.</summary>
    /// <param name="owner">The module that holds the tensor.</param>
    /// <param name="name">Its name in the module (<c>weight</c>, <c>layer_scale</c>).</param>
    /// <param name="value">The tensor.</param>
    public string Parameter(nn.Module owner, string name, Tensor value)
    {
        string prefix = _paths.TryGetValue(owner, out var path) && path.Length > 0 ? path + "." : "";
        return Builder.Initializer(prefix + name, value);
    }

    /// <summary>Records the static shape of a value (used by operations that need it, e.g. adaptive pooling to a grid).</summary>
    /// <param name="value">Value name.</param>
    /// <param name="shape">Its shape, batch first.</param>
    public void SetShape(string value, IReadOnlyList<long> shape) => _shapes[value] = shape.ToArray();

    /// <summary>The static shape recorded for a value, or null.</summary>
    /// <param name="value">Value name.</param>
    public IReadOnlyList<long>? ShapeOf(string value) => _shapes.GetValueOrDefault(value);

    /// <summary>Fails when the export has a dynamic spatial size: <paramref name="what"/> needs the size fixed.</summary>
    /// <param name="what">What needs it, e.g. "AdaptiveAvgPool2d 'avgpool' pools to a fixed 7×7 grid".</param>
    /// <exception cref="NotSupportedException">The export asked for a dynamic size.</exception>
    public void RequireFixedSize(string what)
    {
        if (DynamicSize)
            throw new NotSupportedException($"{Root.GetName()} cannot be exported with a dynamic input size: {what}. Export it at a fixed size.");
    }

    /// <summary>Writes a node (see <see cref="OnnxGraphBuilder.Node"/>).</summary>
    /// <param name="opType">ONNX operator.</param>
    /// <param name="inputs">Input value names.</param>
    /// <param name="attributes">Attributes.</param>
    public string Op(string opType, IReadOnlyList<string> inputs, params AttributeProto[] attributes) => Builder.Node(opType, inputs, attributes);

    /// <summary><c>a + b</c> (broadcasting).</summary>
    /// <param name="a">First value.</param>
    /// <param name="b">Second value.</param>
    public string Add(string a, string b) => Op("Add", [a, b]);

    /// <summary><c>a · b</c> (broadcasting).</summary>
    /// <param name="a">First value.</param>
    /// <param name="b">Second value.</param>
    public string Mul(string a, string b) => Op("Mul", [a, b]);

    /// <summary>ReLU.</summary>
    /// <param name="x">Input value.</param>
    public string Relu(string x) => Op("Relu", [x]);

    /// <summary>Concatenation along <paramref name="axis"/> (1: channels).</summary>
    /// <param name="axis">Axis.</param>
    /// <param name="values">Values in order.</param>
    public string Concat(long axis, params string[] values) => Op("Concat", values, OnnxGraphBuilder.Int("axis", axis));

    /// <summary>Global average pooling of an [N, C, H, W] map to [N, C, 1, 1].</summary>
    /// <param name="x">Input value.</param>
    public string GlobalAveragePool(string x) => Op("GlobalAveragePool", [x]);

    /// <summary>Flattens to [N, rest] (torch's <c>flatten(1)</c>).</summary>
    /// <param name="x">Input value.</param>
    public string Flatten(string x) => Op("Flatten", [x], OnnxGraphBuilder.Int("axis", 1));

    /// <summary>Permutes dimensions.</summary>
    /// <param name="x">Input value.</param>
    /// <param name="perm">New order.</param>
    public string Transpose(string x, params long[] perm) => Op("Transpose", [x], OnnxGraphBuilder.Ints("perm", perm));

    /// <summary>Reshapes; 0 keeps the input's dimension (the dynamic batch), -1 is inferred.</summary>
    /// <param name="x">Input value.</param>
    /// <param name="shape">The new shape.</param>
    public string Reshape(string x, params long[] shape) => Op("Reshape", [x, Builder.Longs(shape)]);

    /// <summary>Max pooling as <c>nn.functional.max_pool2d</c> (square kernel, stride and padding).</summary>
    /// <param name="x">Input value.</param>
    /// <param name="kernel">Kernel size.</param>
    /// <param name="stride">Stride.</param>
    /// <param name="padding">Padding on every side.</param>
    /// <param name="ceilMode">torch's <c>ceil_mode</c>.</param>
    public string MaxPool(string x, long kernel, long stride, long padding = 0, bool ceilMode = false) =>
        MaxPool(x, [kernel, kernel], [stride, stride], [padding, padding], [1, 1], ceilMode);

    /// <summary>Max pooling with per-axis settings.</summary>
    /// <param name="x">Input value.</param>
    /// <param name="kernel">Kernel [h, w].</param>
    /// <param name="stride">Stride [h, w].</param>
    /// <param name="padding">Padding [h, w] on both sides.</param>
    /// <param name="dilation">Dilation [h, w].</param>
    /// <param name="ceilMode">torch's <c>ceil_mode</c>.</param>
    public string MaxPool(string x, long[] kernel, long[] stride, long[] padding, long[] dilation, bool ceilMode) =>
        Op("MaxPool", [x], OnnxGraphBuilder.Ints("kernel_shape", kernel), OnnxGraphBuilder.Ints("strides", stride),
            OnnxGraphBuilder.Ints("pads", Pads(padding)), OnnxGraphBuilder.Ints("dilations", dilation), OnnxGraphBuilder.Int("ceil_mode", ceilMode ? 1 : 0));

    /// <summary>Average pooling as <c>nn.functional.avg_pool2d</c> (square kernel; torch counts padding by default).</summary>
    /// <param name="x">Input value.</param>
    /// <param name="kernel">Kernel size.</param>
    /// <param name="stride">Stride.</param>
    /// <param name="padding">Padding on every side.</param>
    /// <param name="ceilMode">torch's <c>ceil_mode</c>.</param>
    /// <param name="countIncludePad">torch's <c>count_include_pad</c>.</param>
    public string AveragePool(string x, long kernel, long stride, long padding = 0, bool ceilMode = false, bool countIncludePad = true) =>
        AveragePool(x, [kernel, kernel], [stride, stride], [padding, padding], ceilMode, countIncludePad);

    /// <summary>Average pooling with per-axis settings.</summary>
    /// <param name="x">Input value.</param>
    /// <param name="kernel">Kernel [h, w].</param>
    /// <param name="stride">Stride [h, w].</param>
    /// <param name="padding">Padding [h, w] on both sides.</param>
    /// <param name="ceilMode">torch's <c>ceil_mode</c>.</param>
    /// <param name="countIncludePad">torch's <c>count_include_pad</c>.</param>
    public string AveragePool(string x, long[] kernel, long[] stride, long[] padding, bool ceilMode, bool countIncludePad) =>
        Op("AveragePool", [x], OnnxGraphBuilder.Ints("kernel_shape", kernel), OnnxGraphBuilder.Ints("strides", stride),
            OnnxGraphBuilder.Ints("pads", Pads(padding)), OnnxGraphBuilder.Int("ceil_mode", ceilMode ? 1 : 0),
            OnnxGraphBuilder.Int("count_include_pad", countIncludePad ? 1 : 0));

    /// <summary>
    /// torch's <c>adaptive_avg_pool2d</c> to <paramref name="outputHeight"/>×<paramref name="outputWidth"/>: a global average pool for
    /// 1×1; otherwise, on a map of known size, the exact bins (torch's <c>floor(i·in/out)</c> to <c>ceil((i+1)·in/out)</c>) as two
    /// averaging matrices, which needs a fixed input size.
    /// </summary>
    /// <param name="x">Input value [N, C, H, W].</param>
    /// <param name="outputHeight">Output height.</param>
    /// <param name="outputWidth">Output width.</param>
    /// <param name="where">The module path, for errors.</param>
    public string AdaptiveAveragePool(string x, long outputHeight, long outputWidth, string where)
    {
        if (outputHeight == 1 && outputWidth == 1) return GlobalAveragePool(x);
        RequireFixedSize($"'{where}' pools adaptively to a fixed {outputHeight}×{outputWidth} grid");
        var shape = ShapeOf(x) ?? throw new NotSupportedException(
            $"ONNX export of '{where}' (adaptive average pooling to {outputHeight}×{outputWidth}) needs the size of its input, which is not known here.");
        long height = shape[2], width = shape[3];
        if (height == outputHeight && width == outputWidth) return x;
        // [N, C, H, W] · Pwᵀ [W, w] → [N, C, H, w]; Ph [h, H] · that → [N, C, h, w].
        var columns = Op("MatMul", [x, Builder.Floats(PoolMatrix(width, outputWidth, transpose: true), width, outputWidth)]);
        var result = Op("MatMul", [Builder.Floats(PoolMatrix(height, outputHeight, transpose: false), outputHeight, height), columns]);
        SetShape(result, [shape[0], shape[1], outputHeight, outputWidth]);
        return result;
    }

    private static float[] PoolMatrix(long input, long output, bool transpose)
    {
        var m = new float[input * output];
        for (long o = 0; o < output; o++)
        {
            long start = o * input / output, end = ((o + 1) * input + output - 1) / output;
            for (long i = start; i < end; i++) m[transpose ? i * output + o : o * input + i] = 1f / (end - start);
        }
        return m;
    }

    /// <summary>ONNX <c>pads</c> (begins, then ends) of symmetric per-axis padding.</summary>
    /// <param name="padding">Padding per spatial axis.</param>
    public static long[] Pads(IReadOnlyList<long> padding) => [.. padding, .. padding];
}
