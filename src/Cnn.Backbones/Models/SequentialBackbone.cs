using Cnn.Backbones.Native;
using Cnn.Backbones.Onnx.Export;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Models;

/// <summary>
/// The layout of a torchvision <c>features</c> Sequential: its layers, their output channels and total stride, and how many of
/// them form the body whose outputs are feature stages (the rest, e.g. EfficientNet's final 1×1 conv, is timm's
/// <c>conv_head</c> and only runs in <see cref="Backbone.ForwardFeatures"/>).
/// </summary>
/// <param name="Layers">The layers <c>features.0</c>, <c>features.1</c>, ….</param>
/// <param name="Channels">Output channels of each layer.</param>
/// <param name="Reductions">Total stride after each layer.</param>
/// <param name="BodyCount">Layers that may be feature stages (a prefix of <paramref name="Layers"/>).</param>
public sealed record FeatureLayout(IReadOnlyList<nn.Module<Tensor, Tensor>> Layers, IReadOnlyList<int> Channels, IReadOnlyList<int> Reductions, int BodyCount)
{
    /// <summary>
    /// Feature stages as timm reports them: for every total stride of the body, its last layer (e.g. EfficientNet-B0: 16/2, 24/4,
    /// 40/8, 112/16, 320/32).
    /// </summary>
    public IReadOnlyList<int> StageEnds =>
        Enumerable.Range(0, BodyCount).Where(i => i == BodyCount - 1 || Reductions[i + 1] != Reductions[i]).ToArray();

    /// <summary>The <see cref="FeatureInfo"/> of <see cref="StageEnds"/>, named <c>features.{index}</c>.</summary>
    public IReadOnlyList<FeatureInfo> FeatureInfo => StageEnds.Select(i => new FeatureInfo(Channels[i], Reductions[i], $"features.{i}")).ToArray();
}

/// <summary>
/// A backbone whose body is torchvision's <c>features</c> Sequential (MobileNet, EfficientNet, ConvNeXt). Feature stages are the
/// layers given by <see cref="FeatureLayout.StageEnds"/>; layers after the body run only in <see cref="Backbone.ForwardFeatures"/> and are
/// not built in features-only mode. Stage groups: <c>stem</c> (<c>features.0</c>), <c>stage1</c>… (the layers up to each feature
/// stage; trailing layers join the last), <c>head</c> (the classifier).
/// </summary>
public abstract class SequentialBackbone : Backbone
{
    private readonly Sequential features;
    private readonly IReadOnlyList<nn.Module<Tensor, Tensor>> _layers;
    private readonly IReadOnlyList<int> _stageEnds;

    /// <summary>Registers <c>features</c>; the derived class registers its head modules after it.</summary>
    /// <param name="name">Model name.</param>
    /// <param name="options">Creation options.</param>
    /// <param name="layout">The features layout (trailing layers already left out when features-only).</param>
    /// <param name="numFeatures">Channels of <see cref="Backbone.ForwardFeatures"/>'s output.</param>
    /// <param name="pretrainedConfig">Configuration of the reference weights.</param>
    /// <param name="classifierPrefix">State-dict prefix of the head (e.g. <c>"classifier."</c>).</param>
    /// <param name="defaultDropRate">The architecture's dropout before the classifier.</param>
    protected SequentialBackbone(string name, ModelOptions options, FeatureLayout layout, int numFeatures, PretrainedConfig pretrainedConfig,
        string classifierPrefix, double defaultDropRate)
        : base(name, options, options.FeaturesOnly ? layout.Channels[layout.BodyCount - 1] : numFeatures, layout.FeatureInfo, pretrainedConfig, defaultDropRate)
    {
        _layers = options.FeaturesOnly ? layout.Layers.Take(layout.BodyCount).ToArray() : layout.Layers;
        _stageEnds = layout.StageEnds;
        features = nn.Sequential(_layers);
        register_module("features", features);

        var groups = new List<StageGroup> { new("stem", ["features.0."]) };
        int previous = 0;
        for (int s = 0; s < _stageEnds.Count; s++)
        {
            int end = s == _stageEnds.Count - 1 ? _layers.Count - 1 : _stageEnds[s];
            var prefixes = Enumerable.Range(previous + 1, Math.Max(0, end - previous)).Select(i => $"features.{i}.").ToArray();
            if (prefixes.Length > 0) groups.Add(new StageGroup($"stage{groups.Count}", prefixes));
            previous = Math.Max(previous, end);
        }
        groups.Add(new StageGroup("head", [classifierPrefix]));
        StageGroups = groups;
    }

    /// <inheritdoc />
    public override IReadOnlyList<StageGroup> StageGroups { get; }

    /// <inheritdoc />
    protected override Tensor ForwardStage(int index, Tensor x)
    {
        if (index < 0 || index >= _stageEnds.Count)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"{GetName()} has feature stages 0..{_stageEnds.Count - 1}.");
        return RunLayers(index == 0 ? 0 : _stageEnds[index - 1] + 1, _stageEnds[index], x);
    }

    /// <summary>The trailing layers after the last stage (e.g. the final 1×1 convolution) when the model has them.</summary>
    /// <param name="lastStage">The output of the last feature stage.</param>
    protected override Tensor FinishFeatures(Tensor lastStage) => RunLayers(_stageEnds[^1] + 1, _layers.Count - 1, lastStage);

    /// <inheritdoc />
    private protected override string ExportStage(int index, OnnxExportContext context, string x) =>
        context.EmitAll(x, _layers.Take(_stageEnds[index] + 1).Skip(index == 0 ? 0 : _stageEnds[index - 1] + 1));

    /// <inheritdoc />
    private protected override string ExportFinishFeatures(OnnxExportContext context, string lastStage) =>
        context.EmitAll(lastStage, _layers.Skip(_stageEnds[^1] + 1));

    private Tensor RunLayers(int first, int last, Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x;
        for (int i = first; i <= last; i++) h = _layers[i].call(h);
        return (ReferenceEquals(h, x) ? h.alias() : h).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// torchvision's inverted-residual blocks (MobileNetV2/V3 <c>InvertedResidual</c>, EfficientNet <c>MBConv</c> and
/// <c>FusedMBConv</c>): the branch Sequential, plus the input when stride is 1 and the width is unchanged, with stochastic depth
/// on the branch (EfficientNet) before the addition.
/// </summary>
internal sealed class InvertedResidual : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly Sequential _branch;
    private readonly StochasticDepth? stochastic_depth;

    /// <summary>Creates the block.</summary>
    /// <param name="branchName">Name of the branch (<c>conv</c> in MobileNetV2, <c>block</c> elsewhere).</param>
    /// <param name="branch">The branch.</param>
    /// <param name="residual">Whether the input is added (stride 1 and equal widths).</param>
    /// <param name="stochasticDepth">Stochastic-depth probability, or null for a block without it (MobileNet).</param>
    public InvertedResidual(string branchName, Sequential branch, bool residual, double? stochasticDepth = null) : base(nameof(InvertedResidual))
    {
        _branch = branch;
        UsesResidual = residual;
        register_module(branchName, branch);
        if (stochasticDepth is { } p)
        {
            stochastic_depth = new StochasticDepth(p);
            register_module("stochastic_depth", stochastic_depth);
        }
    }

    /// <summary>Whether the input is added to the branch.</summary>
    public bool UsesResidual { get; }

    /// <summary>Stochastic-depth probability of the branch (0 without).</summary>
    public double DropPathProbability => stochastic_depth?.Probability ?? 0;

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var result = _branch.call(x);
        if (UsesResidual)
        {
            if (stochastic_depth is not null) result = stochastic_depth.call(result);
            result = result.Plus(x);
        }
        return result.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public string ExportOnnx(OnnxExportContext context, string input)
    {
        var branch = context.Emit(_branch, input);
        return UsesResidual ? context.Add(branch, input) : branch;
    }
}
