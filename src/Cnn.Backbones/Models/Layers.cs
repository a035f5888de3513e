using Cnn.Backbones.Compute;
using Cnn.Backbones.Native;
using Cnn.Backbones.Onnx.Export;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Models;

/// <summary>Building blocks shared by the modern families, each equal to its torchvision <c>ops</c> / timm counterpart.</summary>
internal static class Layers
{
    /// <summary>
    /// torchvision's (and TensorFlow's) <c>_make_divisible</c>: rounds <paramref name="value"/> to the nearest multiple of
    /// <paramref name="divisor"/>, at least <paramref name="minValue"/> (default: the divisor), adding one divisor when rounding
    /// down lost more than 10%.
    /// </summary>
    /// <param name="value">Channel count before rounding.</param>
    /// <param name="divisor">The multiple to round to.</param>
    /// <param name="minValue">Lower bound, or null for <paramref name="divisor"/>.</param>
    public static int MakeDivisible(double value, int divisor, int? minValue = null)
    {
        int min = minValue ?? divisor;
        int rounded = Math.Max(min, (int)(value + divisor / 2.0) / divisor * divisor);
        if (rounded < 0.9 * value) rounded += divisor;
        return rounded;
    }

    /// <summary>
    /// torchvision's <c>Conv2dNormActivation</c>: a <see cref="Sequential"/> of a convolution (<c>0</c>, padding
    /// <c>(k - 1) / 2 · dilation</c> unless given), BatchNorm (<c>1</c>) and an optional activation (<c>2</c>).
    /// </summary>
    /// <param name="inChannels">Input channels.</param>
    /// <param name="outChannels">Output channels.</param>
    /// <param name="kernelSize">Kernel size.</param>
    /// <param name="stride">Stride.</param>
    /// <param name="groups">Convolution groups.</param>
    /// <param name="activation">Activation factory, or null for none.</param>
    /// <param name="norm">BatchNorm settings.</param>
    /// <param name="device">Device for the parameters, or null.</param>
    /// <param name="dilation">Dilation.</param>
    public static Sequential ConvNormAct(long inChannels, long outChannels, long kernelSize, long stride, long groups,
        Func<nn.Module<Tensor, Tensor>>? activation, BatchNormSettings norm, Device? device, long dilation = 1)
    {
        var conv = Ops.Conv2d(inChannels, outChannels, kernelSize, stride: stride, padding: (kernelSize - 1) / 2 * dilation,
            dilation: dilation, groups: groups, bias: false, device: device);
        var bn = Ops.BatchNorm2d(outChannels, eps: norm.Eps, momentum: norm.Momentum, device: device);
        return activation is null ? nn.Sequential(conv, bn) : nn.Sequential(conv, bn, activation());
    }

    /// <summary>
    /// PyTorch's <c>nn.init.trunc_normal_(tensor, mean, std, a, b)</c>: N(<paramref name="mean"/>, <paramref name="std"/>²) truncated
    /// to [<paramref name="a"/>, <paramref name="b"/>] (absolute bounds) by inverse-CDF sampling, so every sample lies within the
    /// bounds. TorchSharp's own <c>trunc_normal_</c> occasionally yields NaN (a uniform sample at ±1 of <c>erfinv</c>); here the
    /// uniform samples are kept strictly inside (-1, 1) and the result is clamped to the bounds, as PyTorch does.
    /// </summary>
    /// <param name="tensor">Tensor to fill in place.</param>
    /// <param name="mean">Mean of the normal distribution.</param>
    /// <param name="std">Standard deviation of the normal distribution, &gt; 0.</param>
    /// <param name="a">Lower bound (absolute), &lt; <paramref name="b"/>.</param>
    /// <param name="b">Upper bound (absolute).</param>
    public static void TruncatedNormal(Tensor tensor, double mean, double std, double a, double b)
    {
        if (!(std > 0) || !(a < b))
            throw new ArgumentOutOfRangeException(nameof(std), $"A truncated normal needs std > 0 and a < b; got std = {std}, [a, b] = [{a}, {b}].");
        using var noGrad = no_grad();
        static double Cdf(double x) => (1 + Erf(x / Math.Sqrt(2))) / 2;
        double l = Cdf((a - mean) / std), u = Cdf((b - mean) / std);
        const double limit = 1 - 1e-7;
        tensor.uniform_(2 * l - 1, 2 * u - 1).ClampInPlace(-limit, limit).erfinv_().TimesInPlace(std * Math.Sqrt(2)).PlusInPlace(mean).ClampInPlace(a, b);
    }

    // erf in double precision: Taylor series for |x| < 3, the continued fraction of erfc beyond.
    private static double Erf(double x)
    {
        if (x > 6) return 1;
        if (x < -6) return -1;
        double ax = Math.Abs(x);
        double result;
        if (ax < 3)
        {
            double term = ax, sum = ax;
            for (int n = 1; n < 200; n++)
            {
                term *= -ax * ax / n;
                double add = term / (2 * n + 1);
                sum += add;
                if (Math.Abs(add) < 1e-17) break;
            }
            result = 2 / Math.Sqrt(Math.PI) * sum;
        }
        else
        {
            double f = 0;
            for (int n = 60; n >= 1; n--) f = n / 2.0 / (ax + f);
            result = 1 - Math.Exp(-ax * ax) / Math.Sqrt(Math.PI) / (ax + f);
        }
        return x < 0 ? -result : result;
    }

    /// <summary>True for the meta device, where initialisers are skipped (there is no storage).</summary>
    /// <param name="device">A device, or null for the default.</param>
    internal static bool IsMeta(Device? device) => device is not null && device.type == DeviceType.META;

    /// <summary>
    /// torchvision's CNN initialisation: Kaiming-normal (fan-out) convolutions with zero bias, norms 1/0, and linear layers by
    /// <paramref name="linear"/>.
    /// </summary>
    /// <param name="model">The model to initialise.</param>
    /// <param name="linear">Initialiser of each linear layer.</param>
    internal static void InitializeCnn(nn.Module model, Action<PrecisionLinear> linear)
    {
        using var noGrad = no_grad();
        foreach (var (_, module) in model.named_modules())
        {
            switch (module)
            {
                case PrecisionConv2d conv:
                    nn.init.kaiming_normal_(conv.weight, mode: nn.init.FanInOut.FanOut);
                    if (conv.bias is { } b) nn.init.zeros_(b);
                    break;
                case FoldableBatchNorm2d bn:
                    nn.init.ones_(bn.weight);
                    nn.init.zeros_(bn.bias);
                    break;
                case PrecisionLinear l:
                    linear(l);
                    break;
            }
        }
    }
}

/// <summary>BatchNorm hyper-parameters of a family (torchvision's <c>partial(nn.BatchNorm2d, eps=..., momentum=...)</c>).</summary>
/// <param name="Eps">Epsilon added to the variance.</param>
/// <param name="Momentum">Running-statistics momentum (PyTorch convention: weight of the new batch).</param>
public sealed record BatchNormSettings(double Eps, double Momentum)
{
    /// <summary>PyTorch's defaults: eps 1e-5, momentum 0.1.</summary>
    public static BatchNormSettings Default { get; } = new(1e-5, 0.1);
}

/// <summary>
/// A container of named submodules that is never called itself, used for heads whose pieces run separately (torchvision's
/// <c>classifier</c> Sequentials, whose dropout is applied by <see cref="Backbone.ForwardHead"/>). Keeps torchvision's key
/// names (<c>classifier.1.weight</c>) and lets <see cref="Backbone.ResetClassifier"/> replace one child.
/// </summary>
internal sealed class ModuleContainer : nn.Module
{
    /// <summary>Creates an empty container.</summary>
    /// <param name="name">Module type name.</param>
    public ModuleContainer(string name) : base(name) { }

    /// <summary>Registers <paramref name="module"/> as child <paramref name="name"/>, replacing any child of that name.</summary>
    /// <param name="name">Child name (e.g. <c>"1"</c> or <c>"head"</c>).</param>
    /// <param name="module">The child.</param>
    public void Set(string name, nn.Module module)
    {
        register_module(name, null!);
        register_module(name, module);
    }
}

/// <summary>
/// torchvision's <c>SqueezeExcitation</c> (and timm's <c>SEModule</c>): mean over space → <c>fc1</c> (1×1 conv with bias) →
/// activation → <c>fc2</c> (1×1 conv with bias) → gate, which scales the input per channel.
/// </summary>
internal sealed class SqueezeExcitation : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly PrecisionConv2d fc1;
    private readonly PrecisionConv2d fc2;
    private readonly nn.Module<Tensor, Tensor> activation;
    private readonly nn.Module<Tensor, Tensor> scale_activation;

    /// <summary>Creates the block.</summary>
    /// <param name="channels">Input (and output) channels.</param>
    /// <param name="squeezeChannels">Channels of the bottleneck.</param>
    /// <param name="activation">Activation after <c>fc1</c> (torchvision: ReLU; EfficientNet: SiLU).</param>
    /// <param name="gate">Gate after <c>fc2</c> (Sigmoid; MobileNetV3: Hardsigmoid).</param>
    /// <param name="device">Device for the parameters, or null.</param>
    public SqueezeExcitation(long channels, long squeezeChannels, nn.Module<Tensor, Tensor> activation, nn.Module<Tensor, Tensor> gate, Device? device = null)
        : base(nameof(SqueezeExcitation))
    {
        fc1 = Ops.Conv2d(channels, squeezeChannels, 1, device: device);
        fc2 = Ops.Conv2d(squeezeChannels, channels, 1, device: device);
        this.activation = activation;
        scale_activation = gate;
        RegisterComponents();
    }

    /// <summary>Channels of the bottleneck.</summary>
    public long SqueezeChannels => fc1.out_channels;

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var scale = x.mean([2, 3], keepdim: true);
        scale = scale_activation.call(fc2.call(activation.call(fc1.call(scale))));
        return (x * scale).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public string ExportOnnx(OnnxExportContext context, string input) =>
        context.Mul(input, context.EmitAll(context.GlobalAveragePool(input), [fc1, activation, fc2, scale_activation]));
}

/// <summary>
/// torchvision's <c>StochasticDepth(p, "row")</c>: in training, zeroes each sample's residual branch with probability
/// <see cref="Probability"/> and scales the survivors by <c>1 / (1 - p)</c>; the identity in eval mode or when p is 0.
/// </summary>
internal sealed class StochasticDepth : nn.Module<Tensor, Tensor>
{
    /// <summary>Creates the module.</summary>
    /// <param name="probability">Drop probability in [0, 1].</param>
    public StochasticDepth(double probability) : base(nameof(StochasticDepth))
    {
        if (double.IsNaN(probability) || probability < 0 || probability > 1)
            throw new ArgumentOutOfRangeException(nameof(probability), probability, $"The drop probability must be in [0, 1]; got {probability}.");
        Probability = probability;
    }

    /// <summary>Drop probability.</summary>
    public double Probability { get; }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        if (!training || Probability == 0) return x.alias();
        double survival = 1 - Probability;
        var size = new long[x.dim()];
        Array.Fill(size, 1L);
        size[0] = x.shape[0];
        using var noise = empty(size, x.dtype, x.device).bernoulli_(survival);
        if (survival > 0) noise.DivideInPlace(survival);
        return x * noise;
    }
}

/// <summary>torchvision's <c>LayerNorm2d</c>: LayerNorm over the channels of an [N, C, H, W] map (parameters <c>weight</c>, <c>bias</c>).</summary>
internal sealed class LayerNorm2d : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly Parameter weight;
    private readonly Parameter bias;
    private readonly double _eps;

    /// <summary>Creates the norm with weight 1 and bias 0.</summary>
    /// <param name="channels">Channels.</param>
    /// <param name="eps">Epsilon (ConvNeXt: 1e-6).</param>
    /// <param name="device">Device for the parameters, or null.</param>
    public LayerNorm2d(long channels, double eps, Device? device = null) : base(nameof(LayerNorm2d))
    {
        weight = new Parameter(ones(channels, device: device));
        bias = new Parameter(zeros(channels, device: device));
        _eps = eps;
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = nn.functional.layer_norm(x.permute(0, 2, 3, 1), [weight.shape[0]], weight, bias, _eps);
        return y.permute(0, 3, 1, 2).MoveToOuterDisposeScope();
    }

    /// <summary>Channels-last LayerNormalization between two transposes, as torch.onnx writes it.</summary>
    /// <param name="context">The graph being written.</param>
    /// <param name="input">The [N, C, H, W] map.</param>
    public string ExportOnnx(OnnxExportContext context, string input)
    {
        var channelsLast = context.Transpose(input, 0, 2, 3, 1);
        var y = context.Op("LayerNormalization", [channelsLast, context.Parameter(this, "weight", weight), context.Parameter(this, "bias", bias)],
            OnnxGraphBuilder.Int("axis", -1), OnnxGraphBuilder.Float("epsilon", _eps));
        return context.Transpose(y, 0, 3, 1, 2);
    }
}

/// <summary>torchvision's <c>ops.misc.Permute</c>: permutes dimensions.</summary>
internal sealed class Permute : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly long[] _dims;

    /// <summary>Creates the module.</summary>
    /// <param name="dims">The new order of the dimensions.</param>
    public Permute(params long[] dims) : base(nameof(Permute)) => _dims = dims;

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => x.permute(_dims);

    /// <inheritdoc />
    public string ExportOnnx(OnnxExportContext context, string input) => context.Transpose(input, _dims);
}
