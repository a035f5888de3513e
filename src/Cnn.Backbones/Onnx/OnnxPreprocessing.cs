using System.Globalization;
using Cnn.Backbones.Models;
using Cnn.Backbones.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Onnx;

/// <summary>
/// A preprocessing graph of the simple kind shipped beside pretrained ONNX models (e.g. ML.NET's <c>ResNetPreprocess.onnx</c>):
/// a channel reordering (<c>Split</c> + <c>Concat</c> on axis 1), a mean subtracted (<c>Sub</c> of a constant: a per-pixel mean image
/// or per-channel values) and an optional scale (<c>Mul</c> / <c>Div</c> by a scalar), applied to pixel values. Any other node is refused.
/// </summary>
/// <param name="ChannelOrder">Output channel <c>i</c> is input channel <c>ChannelOrder[i]</c> (e.g. [2, 1, 0] for RGB → BGR).</param>
/// <param name="Mean">The subtracted constant as stored (output channel order), broadcastable to N×C×H×W.</param>
/// <param name="ChannelMean">The mean of <see cref="Mean"/> over each output channel (all pixels).</param>
/// <param name="Scale">The factor applied after the subtraction (1 when none).</param>
public sealed record OnnxPreprocessing(IReadOnlyList<int> ChannelOrder, Tensor Mean, IReadOnlyList<double> ChannelMean, double Scale) : IDisposable
{
    /// <summary>Reads the preprocessing graph.</summary>
    /// <param name="path">The preprocessing <c>.onnx</c> file.</param>
    /// <exception cref="WeightFileException">The file is not an ONNX model or has a node other than Split, Concat, Sub, Mul or Div.</exception>
    public static OnnxPreprocessing Read(string path)
    {
        var graph = new OnnxGraph(path);
        Native.TorchRuntime.EnsureLoaded();
        int channels = (int)(graph.InputDims is [_, > 0 and var c, ..] ? c : 3);
        // Follow the single data path from the input, tracking which input channel each channel of the current value holds.
        var channelsOf = new Dictionary<string, int[]>(StringComparer.Ordinal) { [graph.Input] = Enumerable.Range(0, channels).ToArray() };
        Tensor? mean = null;
        double scale = 1;
        foreach (var node in graph.Model.Graph.Node)
        {
            string Where() => $"{path}: preprocessing node '{(node.Name.Length > 0 ? node.Name : node.OpType)}' ({node.OpType})";
            long axis = node.Attribute.FirstOrDefault(a => a.Name == "axis")?.I ?? 0;
            switch (node.OpType)
            {
                case "Split" when axis == 1 && channelsOf.TryGetValue(node.Input[0], out var source) && node.Output.Count == source.Length:
                    for (int i = 0; i < node.Output.Count; i++) channelsOf[node.Output[i]] = [source[i]];
                    break;
                case "Concat" when axis == 1 && node.Input.All(channelsOf.ContainsKey):
                    channelsOf[node.Output[0]] = node.Input.SelectMany(i => channelsOf[i]).ToArray();
                    break;
                case "Sub" when mean is null && channelsOf.TryGetValue(node.Input[0], out var order) && graph.IsConstant(node.Input[1]):
                    using (var stored = graph.Tensor(node.Input[1]))
                        mean = stored.to(ScalarType.Float32, copy: true);
                    channelsOf[node.Output[0]] = order;
                    break;
                case "Mul" or "Div" when channelsOf.TryGetValue(node.Input[0], out var order) && graph.IsConstant(node.Input[1]):
                    using (var factor = graph.Tensor(node.Input[1]))
                    {
                        if (factor.numel() != 1) throw new WeightFileException(path, $"{Where()}: only a scalar factor is understood.");
                        double value = factor.to(ScalarType.Float64).item<double>();
                        scale *= node.OpType == "Mul" ? value : 1 / value;
                    }
                    channelsOf[node.Output[0]] = order;
                    break;
                default:
                    throw new WeightFileException(path,
                        $"{Where()}: only channel reordering (Split/Concat on axis 1), the subtraction of a constant mean and a scalar Mul/Div are understood as preprocessing.");
            }
        }
        if (!channelsOf.TryGetValue(graph.Output, out var final) || final.Length != channels)
            throw new WeightFileException(path, $"{path}: the preprocessing output '{graph.Output}' is not the {channels}-channel image the input is.");
        mean ??= torch.zeros(1);
        using var scope = torch.NewDisposeScope();
        var perChannel = mean.dim() >= 3 ? mean.reshape(channels, -1).mean([1]) : mean.reshape(-1).expand(channels);
        return new OnnxPreprocessing(final, mean, perChannel.to(ScalarType.Float64).data<double>().ToArray(), scale);
    }

    /// <summary>
    /// The preprocessing as a pretrained configuration for images read as RGB in [0, 1] (<c>(x − mean) / std</c> per channel, in the
    /// input's channel order): the per-channel mean of <see cref="Mean"/> divided by <paramref name="pixelScale"/>, and
    /// std = 1 / (<paramref name="pixelScale"/> · <see cref="Scale"/>). The reordering is not in it: <see cref="FoldChannelOrder"/>
    /// moves it into the first convolution.
    /// </summary>
    /// <param name="architecture">Its pretrained configuration gives the first convolution's and the classifier's names.</param>
    /// <param name="pixelScale">What the graph's input values are in units of [0, 1] pixels (255 for 0–255 input).</param>
    /// <param name="numClasses">Classes of the imported classifier (0 for a featurizer).</param>
    /// <param name="tag">Names the weights.</param>
    public PretrainedConfig ToPretrainedConfig(ModelInfo architecture, double pixelScale, int numClasses, string tag)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        int channels = ChannelOrder.Count;
        var mean = new double[channels];
        for (int i = 0; i < channels; i++) mean[ChannelOrder[i]] = ChannelMean[i] / pixelScale;
        var std = Enumerable.Repeat(1 / (pixelScale * Scale), channels).ToArray();
        var size = architecture.DefaultConfig.InputSize;
        // A mean image fixes the input size; per-channel values leave the architecture's.
        bool image = Mean.dim() >= 3 && Mean.shape[^1] > 1 && Mean.shape[^2] > 1;
        int height = image ? (int)Mean.shape[^2] : size.Height, width = image ? (int)Mean.shape[^1] : size.Width;
        return architecture.DefaultConfig with
        {
            InputSize = new InputSize(channels, height, width),
            Mean = mean,
            Std = std,
            CropPct = 1,
            NumClasses = numClasses,
            Tag = tag,
        };
    }

    /// <summary>
    /// Moves the channel reordering into the first convolution of <paramref name="weights"/> (its <c>.weight</c> entry, named by
    /// <paramref name="firstConv"/>): the network then takes the input in the order the preprocessing received it.
    /// </summary>
    public void FoldChannelOrder(StateDict weights, string firstConv)
    {
        ArgumentNullException.ThrowIfNull(weights);
        string key = firstConv + ".weight";
        var weight = weights[key];
        var inverse = new long[ChannelOrder.Count];
        for (int i = 0; i < ChannelOrder.Count; i++) inverse[ChannelOrder[i]] = i;
        using var index = torch.tensor(inverse);
        using (torch.no_grad())
        {
            using var permuted = weight.index_select(1, index);
            weight.copy_(permuted);
        }
        weights.Metadata["cnn.channel_order_folded"] = string.Join(",", ChannelOrder.Select(c => c.ToString(CultureInfo.InvariantCulture)));
    }

    /// <summary>Disposes <see cref="Mean"/>.</summary>
    public void Dispose() => Mean.Dispose();
}
