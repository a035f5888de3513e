using Cnn.Backbones.Compute;
using Cnn.Backbones.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using B = Cnn.Backbones.Onnx.Export.OnnxGraphBuilder;

namespace Cnn.Backbones.Onnx.Export;

/// <summary>
/// The ONNX nodes of TorchSharp's built-in modules in eval mode (Sequential, convolution, BatchNorm, linear, LayerNorm,
/// activations, pooling, flatten; dropout, identity and stochastic depth pass their input through). Weights become
/// initializers named by their state-dict keys; BatchNorm stays a <c>BatchNormalization</c> node (not folded), so an exported
/// model imports back to the same weights.
/// </summary>
internal static class BuiltInModules
{
    /// <summary>The output of <paramref name="module"/>, or null when it is not a module written here.</summary>
    public static string? Emit(OnnxExportContext c, nn.Module module, string x) => module switch
    {
        Sequential sequential => c.EmitAll(x, sequential.children()),
        PrecisionConv2d conv => Conv(c, conv, x),
        FoldableBatchNorm2d bn => BatchNorm(c, bn, x),
        PrecisionLinear linear => Linear(c, linear, x),
        LayerNorm ln => LayerNorm(c, ln, x),
        ReLU => c.Relu(x),
        ReLU6 => c.Op("Clip", [x, c.Builder.Scalar(0), c.Builder.Scalar(6)]),
        Sigmoid => c.Op("Sigmoid", [x]),
        Tanh => c.Op("Tanh", [x]),
        SiLU => c.Mul(x, c.Op("Sigmoid", [x])),
        Hardswish => c.Op("HardSwish", [x]),
        Hardsigmoid => c.Op("HardSigmoid", [x], B.Float("alpha", 1.0 / 6), B.Float("beta", 0.5)),
        GELU gelu => Gelu(c, gelu, x),
        Softmax softmax => c.Op("Softmax", [x], B.Int("axis", softmax.dim)),
        MaxPool2d pool => c.MaxPool(x, pool.kernel_size, pool.stride ?? pool.kernel_size, pool.padding ?? [0, 0], pool.dilation ?? [1, 1], pool.ceil_mode),
        AvgPool2d pool => AvgPool(c, pool, x),
        AdaptiveAvgPool2d pool => c.AdaptiveAveragePool(x, pool.output_size[0], pool.output_size.Length > 1 ? pool.output_size[1] : pool.output_size[0], c.PathOf(pool)),
        Flatten flatten => Flatten(c, flatten, x),
        Dropout or Identity or StochasticDepth => x,
        _ => null,
    };

    private static string Conv(OnnxExportContext c, PrecisionConv2d conv, string x)
    {
        var inputs = new List<string> { x, c.Parameter(conv, "weight", conv.weight) };
        if (conv.bias is { } bias) inputs.Add(c.Parameter(conv, "bias", bias));
        return c.Op("Conv", inputs, B.Ints("kernel_shape", conv.kernel_size), B.Ints("strides", conv.stride),
            B.Ints("pads", OnnxExportContext.Pads(conv.padding)), B.Ints("dilations", conv.dilation), B.Int("group", conv.groups));
    }

    private static string BatchNorm(OnnxExportContext c, FoldableBatchNorm2d bn, string x)
    {
        if (bn.running_mean is null || bn.running_var is null)
            throw new NotSupportedException($"ONNX export of '{c.PathOf(bn)}': a BatchNorm without running statistics normalises by batch statistics in eval mode, which an exported graph cannot.");
        long n = bn.num_features;
        string scale = bn.weight is { } w ? c.Parameter(bn, "weight", w) : c.Builder.Floats(Enumerable.Repeat(1f, (int)n).ToArray());
        string shift = bn.bias is { } b ? c.Parameter(bn, "bias", b) : c.Builder.Floats(new float[n]);
        return c.Op("BatchNormalization", [x, scale, shift, c.Parameter(bn, "running_mean", bn.running_mean), c.Parameter(bn, "running_var", bn.running_var)],
            B.Float("epsilon", bn.eps));
    }

    private static string Linear(OnnxExportContext c, PrecisionLinear linear, string x)
    {
        // MatMul with the transposed weight works for inputs of any rank (ViT's [N, L, D] tokens as well as pooled vectors).
        using var transposed = linear.weight.t();
        var y = c.Op("MatMul", [x, c.Parameter(linear, "weight.T", transposed)]);
        return linear.bias is { } bias ? c.Add(y, c.Parameter(linear, "bias", bias)) : y;
    }

    private static string LayerNorm(OnnxExportContext c, LayerNorm ln, string x)
    {
        long[] shape = ln.normalized_shape;
        var weight = ln.weight is { } w ? c.Parameter(ln, "weight", w) : c.Builder.Floats(Enumerable.Repeat(1f, (int)shape.Aggregate(1L, (a, b) => a * b)).ToArray(), shape);
        var inputs = new List<string> { x, weight };
        if (ln.bias is { } bias) inputs.Add(c.Parameter(ln, "bias", bias));
        return c.Op("LayerNormalization", inputs, B.Int("axis", -shape.Length), B.Float("epsilon", ln.eps));
    }

    /// <summary>Exact GELU, <c>x · (1 + erf(x / √2)) / 2</c>, or its tanh approximation.</summary>
    private static string Gelu(OnnxExportContext c, GELU gelu, string x)
    {
        string inner;
        if (string.Equals(gelu.approximate.ToString(), "tanh", StringComparison.OrdinalIgnoreCase))
        {
            // tanh(√(2/π) · (x + 0.044715 x³))
            var cube = c.Mul(c.Mul(x, x), x);
            var sum = c.Add(x, c.Mul(cube, c.Builder.Scalar(0.044715f)));
            inner = c.Op("Tanh", [c.Mul(sum, c.Builder.Scalar((float)Math.Sqrt(2 / Math.PI)))]);
        }
        else
        {
            inner = c.Op("Erf", [c.Op("Div", [x, c.Builder.Scalar((float)Math.Sqrt(2))])]);
        }
        return c.Mul(c.Mul(x, c.Add(inner, c.Builder.Scalar(1))), c.Builder.Scalar(0.5f));
    }

    private static string AvgPool(OnnxExportContext c, AvgPool2d pool, string x)
    {
        if (pool.divisor_override is not null)
            throw new NotSupportedException($"ONNX export of '{c.PathOf(pool)}': average pooling with divisor_override is not supported.");
        return c.AveragePool(x, pool.kernel_size, pool.stride ?? pool.kernel_size, pool.padding ?? [0, 0], pool.ceil_mode, pool.count_include_pad);
    }

    private static string Flatten(OnnxExportContext c, Flatten flatten, string x)
    {
        if (flatten.start_dim != 1 || flatten.end_dim != -1)
            throw new NotSupportedException($"ONNX export of '{c.PathOf(flatten)}': only flatten(1) is supported (got start {flatten.start_dim}, end {flatten.end_dim}).");
        return c.Flatten(x);
    }
}
