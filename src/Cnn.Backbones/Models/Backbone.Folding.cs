using Cnn.Backbones.Compute;
using Cnn.Backbones.Onnx;
using static TorchSharp.torch;

namespace Cnn.Backbones.Models;

public abstract partial class Backbone
{
    /// <summary>
    /// Folds every BatchNorm into the convolution whose output it normalises, for inference, as ONNX Runtime and PyTorch's
    /// <c>fuse_conv_bn_eval</c> do: no-grad eval-mode forward passes then skip those BatchNorms and convolve with
    /// <c>w · γ / √(var + ε)</c> and <c>(b − mean) · γ / √(var + ε) + β</c>, equal to the unfolded network within float32
    /// rounding. Parameters, state dict, exports and every pass with gradients or in training mode are unchanged.
    /// The folded weights are a snapshot: <c>train()</c>, <see cref="UnfoldBatchNorm"/> and loading weights end the folding;
    /// fold again after changing weights in place.
    /// </summary>
    /// <returns>The number of BatchNorm layers folded (BatchNorms that follow no convolution, as in DenseNet, stay).</returns>
    public int FoldBatchNorm()
    {
        UnfoldBatchNorm();
        if (!modules().OfType<FoldableBatchNorm2d>().Any()) return 0;
        var (channels, height, width) = FixedInputSize is { } side ? (InChannels, side, side)
            : (InChannels, Math.Max(PretrainedConfig.InputSize.Height, MinInputSize), Math.Max(PretrainedConfig.InputSize.Width, MinInputSize));
        bool wasTraining = training;
        IReadOnlyList<ModelLayer> layers;
        using (var probe = zeros(1, channels, height, width, device: parameters().First().device))
        using (OverrideCompute(ComputeSettings.Float32))
            layers = ModelLayers.Trace(this, probe, out _, out _);
        if (wasTraining) train();
        var runs = layers.GroupBy(l => l.Name).ToDictionary(g => g.Key, g => g.Count());
        int folded = 0;
        foreach (var layer in layers)
        {
            if (layer is not { Module: PrecisionConv2d conv, Norm: { } norm, NormName: { } normName } || runs[layer.Name] > 1 || runs.GetValueOrDefault(normName) > 1) continue;
            conv.Fold(norm);
            folded++;
        }
        return folded;
    }

    /// <summary>Ends <see cref="FoldBatchNorm"/>: every convolution and BatchNorm computes on its own again.</summary>
    public void UnfoldBatchNorm()
    {
        foreach (var conv in modules().OfType<PrecisionConv2d>()) conv.Unfold();
    }

    /// <summary>Whether any BatchNorm is folded into a convolution (<see cref="FoldBatchNorm"/>).</summary>
    public bool IsBatchNormFolded => modules().OfType<PrecisionConv2d>().Any(c => c.IsFolded);
}
