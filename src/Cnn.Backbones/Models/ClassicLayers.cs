using System.Globalization;
using Cnn.Backbones.Compute;
using Cnn.Backbones.Native;
using Cnn.Backbones.Onnx.Export;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Models;

/// <summary>
/// A sequence of layers registered under their indices (<c>0</c>, <c>1</c>, …) like PyTorch's <c>nn.Sequential</c>, so state-dict
/// keys read <c>features.0.weight</c>; it can run a sub-range (one feature stage) and replace one layer (a classifier inside
/// <c>classifier.6</c>). Every layer runs through <c>call</c>, so forward hooks see it.
/// </summary>
internal sealed class IndexedSequence : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly List<nn.Module<Tensor, Tensor>> _layers;

    public IndexedSequence(IEnumerable<nn.Module<Tensor, Tensor>> layers) : base("Sequential")
    {
        _layers = layers.ToList();
        for (int i = 0; i < _layers.Count; i++) register_module(Name(i), _layers[i]);
    }

    public int Count => _layers.Count;

    public nn.Module<Tensor, Tensor> this[int index] => _layers[index];

    /// <summary>Runs layers <paramref name="start"/> (inclusive) to <paramref name="end"/> (exclusive); the range must not be empty.</summary>
    public Tensor Run(Tensor x, int start, int end)
    {
        if (start < 0 || end > _layers.Count || start >= end)
            throw new ArgumentOutOfRangeException(nameof(start), $"Invalid layer range [{start}, {end}) of {_layers.Count} layers.");
        using var scope = NewDisposeScope();
        var h = x;
        for (int i = start; i < end; i++) h = _layers[i].call(h);
        return h.MoveToOuterDisposeScope();
    }

    public override Tensor forward(Tensor x) => Run(x, 0, _layers.Count);

    /// <summary>Writes layers <paramref name="start"/> (inclusive) to <paramref name="end"/> (exclusive).</summary>
    public string Export(OnnxExportContext context, string x, int start, int end) => context.EmitAll(x, _layers.Take(end).Skip(start));

    public string ExportOnnx(OnnxExportContext context, string input) => Export(context, input, 0, _layers.Count);

    /// <summary>Replaces layer <paramref name="index"/> (registered under the same name); the caller disposes the old one.</summary>
    public void Replace(int index, nn.Module<Tensor, Tensor> layer)
    {
        register_module(Name(index), null!);
        register_module(Name(index), layer);
        _layers[index] = layer;
    }

    private static string Name(int index) => index.ToString(CultureInfo.InvariantCulture);
}

/// <summary>torchvision's <c>BasicConv2d</c> of GoogLeNet and Inception v3: bias-free conv → BatchNorm (eps 0.001) → ReLU.</summary>
internal sealed class BasicConv2d : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly PrecisionConv2d conv;
    private readonly FoldableBatchNorm2d bn;

    public BasicConv2d(int inChannels, int outChannels, (long, long) kernel, (long, long)? stride = null, (long, long)? padding = null, Device? device = null)
        : base(nameof(BasicConv2d))
    {
        conv = Ops.Conv2d(inChannels, outChannels, kernel, stride: stride ?? (1, 1), padding: padding ?? (0, 0), bias: false, device: device);
        bn = Ops.BatchNorm2d(outChannels, eps: 1e-3, device: device);
        RegisterComponents();
    }

    public BasicConv2d(int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0, Device? device = null)
        : this(inChannels, outChannels, (kernel, kernel), (stride, stride), (padding, padding), device)
    {
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return nn.functional.relu(bn.call(conv.call(x))).MoveToOuterDisposeScope();
    }

    public string ExportOnnx(OnnxExportContext context, string input) => context.Relu(context.EmitAll(input, [conv, bn]));
}

/// <summary>Small helpers shared by the classic families.</summary>
internal static class ClassicLayers
{
    /// <summary>torchvision's <c>_transform_input</c>: maps ImageNet normalisation to mean = std = 0.5, channel by channel.</summary>
    public static Tensor TransformInput(Tensor x)
    {
        using var scope = NewDisposeScope();
        var mean = PretrainedConfig.ImageNetMean;
        var std = PretrainedConfig.ImageNetStd;
        var channels = new Tensor[3];
        for (int c = 0; c < 3; c++)
            channels[c] = x[.., c].unsqueeze(1).Times(std[c] / 0.5).Plus((mean[c] - 0.5) / 0.5);
        return cat(channels, 1).MoveToOuterDisposeScope();
    }

    /// <summary><see cref="TransformInput(Tensor)"/> as ONNX: one per-channel multiply and add.</summary>
    public static string ExportTransformInput(OnnxExportContext context, string x)
    {
        var mean = PretrainedConfig.ImageNetMean;
        var std = PretrainedConfig.ImageNetStd;
        var scale = context.Builder.Floats(Enumerable.Range(0, 3).Select(c => (float)(std[c] / 0.5)).ToArray(), 1, 3, 1, 1);
        var shift = context.Builder.Floats(Enumerable.Range(0, 3).Select(c => (float)((mean[c] - 0.5) / 0.5)).ToArray(), 1, 3, 1, 1);
        return context.Add(context.Mul(x, scale), shift);
    }

    /// <summary>
    /// The eval-mode head of AlexNet and VGG as ONNX: adaptive average pooling to the classifier's grid, flatten, then the
    /// classifier Sequential (its dropouts are the identity).
    /// </summary>
    public static string ExportPooledHead(OnnxExportContext context, nn.Module avgpool, IndexedSequence classifier, string features) =>
        classifier.ExportOnnx(context, context.Flatten(context.Emit(avgpool, features)));

    /// <summary>The dropout a torchvision head uses: the option when set (0 included), else the architecture's default.</summary>
    public static ModelOptions WithHeadDropout(ModelOptions options, double torchvisionDefault) =>
        options.DropRate is not null ? options : options with { DropRate = torchvisionDefault };

    /// <summary>Parameter-name prefixes (<c>features.3.</c>) of the layers in [start, end) of a sequence that have parameters.</summary>
    public static IEnumerable<string> ParameterPrefixes(string container, IndexedSequence sequence, int start, int end)
    {
        for (int i = start; i < end; i++)
            if (sequence[i].parameters().Any())
                yield return $"{container}.{i.ToString(CultureInfo.InvariantCulture)}.";
    }
}
