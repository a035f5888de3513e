using System.Globalization;
using Cnn.Backbones.Compute;
using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.Backbones.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Onnx;

/// <summary>
/// Maps the weights of an ONNX model onto a registered architecture by the graph's structure, then verifies the mapping by
/// execution. ONNX initializer names rarely match torchvision's (<c>onnx::Conv_193</c>, <c>Parameter96</c>), so layers are paired
/// along the data flow: the Conv / BatchNormalization / Gemm / MatMul nodes of the graph, in order, against the convolution,
/// BatchNorm and linear modules of the model in the order they execute, shape by shape. A Conv whose BatchNorm the exporter folded
/// into it (<c>torch.onnx.export</c> in eval mode) becomes a convolution and a BatchNorm computing the same function; a graph
/// without a classifier maps onto the architecture without one. The mapped model and ONNX Runtime then run the same random input:
/// every mapped layer's output and the graph's output must agree within the tolerance, or nothing is returned.
/// </summary>
public static class OnnxImporter
{
    /// <summary>The default tolerance: largest |difference| relative to the largest |value| of each compared output.</summary>
    public const double DefaultTolerance = 1e-4;

    internal sealed record Assignment(string Key, Tensor Value, string? OnnxTensor, string Note);

    /// <summary>
    /// Imports <paramref name="onnxPath"/> onto <paramref name="architecture"/>: maps the initializers to the architecture's state
    /// dict and verifies the result against ONNX Runtime.
    /// </summary>
    /// <param name="onnxPath">The <c>.onnx</c> file (weights stored inside it).</param>
    /// <param name="architecture">A registered model name (<see cref="ModelRegistry.List"/>), e.g. <c>resnet18</c>.</param>
    /// <param name="options">
    /// Options of the architecture (e.g. <see cref="ModelOptions.TransformInput"/> = false for a GoogLeNet exported without
    /// <c>transform_input</c>); null for the defaults. <see cref="ModelOptions.NumClasses"/> and <see cref="ModelOptions.InChannels"/>
    /// are taken from the graph; <see cref="ModelOptions.AuxLogits"/> defaults to false (an exported eval-mode graph has no auxiliary
    /// classifiers); <see cref="ModelOptions.WeightsPath"/> is ignored.
    /// </param>
    /// <param name="tolerance">Largest accepted |ours − ONNX Runtime| relative to the largest |ONNX Runtime| value of each output.</param>
    /// <returns>The verified weights, the options they fit and the report; the caller disposes it.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="ArgumentException">The architecture is not registered.</exception>
    /// <exception cref="WeightFileException">The file is not a valid ONNX model, or an initializer cannot be read.</exception>
    /// <exception cref="OnnxImportException">The graph does not map onto the architecture, or the mapped model computes something else (the message names the first mismatch).</exception>
    public static OnnxImportResult Import(string onnxPath, string architecture, ModelOptions? options = null, double tolerance = DefaultTolerance)
    {
        ArgumentException.ThrowIfNullOrEmpty(onnxPath);
        if (!double.IsFinite(tolerance) || tolerance <= 0)
            throw new ArgumentOutOfRangeException(nameof(tolerance), tolerance, "The tolerance must be a finite number > 0.");
        var info = ModelRegistry.Get(architecture);
        bool takesAuxiliaryHeads = ModelRegistry.GetDefinition(architecture).Capabilities.AuxLogits;
        var graph = new OnnxGraph(onnxPath);
        Native.TorchRuntime.EnsureLoaded();
        long[] inputShape = InputShape(graph, info);
        // An exported graph computes the eval-mode forward, which never runs auxiliary classifiers: build without them unless asked.
        var baseOptions = (options ?? new ModelOptions()) with
        {
            InChannels = (int)inputShape[1], WeightsPath = null, FeaturesOnly = false, AuxLogits = options?.AuxLogits ?? (takesAuxiliaryHeads ? false : null),
        };
        if (baseOptions.ImageSize is null && inputShape[2] == inputShape[3] && inputShape[2] != info.DefaultConfig.InputSize.Height)
            baseOptions = baseOptions with { ImageSize = (int)inputShape[2] }; // a ViT's position embedding is built for one size
        if (baseOptions.BlockCounts is null && InferBlockCounts(graph, info.Name, baseOptions) is { } counts)
            baseOptions = baseOptions with { BlockCounts = counts };

        // ONNX Runtime runs once, on a seeded random input, keeping every layer's input and output: the pairing follows them
        // and the verification compares with them.
        using var scope = torch.NewDisposeScope();
        var input = torch.randn(inputShape, generator: new torch.Generator(20260101));
        var names = graph.Layers.SelectMany(l => new[] { l.Input, l.Output }).Append(graph.Output);
        var onnx = OnnxVerifier.RunOnnxRuntime(graph, input, names);

        string? firstFailure = null;
        foreach (int classes in ClassCandidates(graph))
        {
            using var model = ModelRegistry.Create(info.Name, baseOptions with { NumClasses = classes });
            var layers = ModelLayers.Trace(model, input, out var unsupported, out var looseKeys);
            if (unsupported.Count > 0)
                throw new OnnxImportException(onnxPath,
                    $"Cannot import {onnxPath} onto {info.Name}: every layer with weights must run once per forward pass, and " +
                    $"{string.Join(", ", unsupported.Take(3))}{(unsupported.Count > 3 ? ", …" : "")}.");
            var loose = MatchLoose(graph, model, looseKeys, info.Name);
            var pairs = DataFlowMatcher.Match(graph, model, layers, input, onnx, info.Name, out string? failure);
            if (pairs is null)
            {
                firstFailure ??= failure;
                continue;
            }
            return Build(graph, model, pairs, loose, info.Name, baseOptions with { NumClasses = classes }, input, onnx, tolerance);
        }
        throw new OnnxImportException(onnxPath, firstFailure!);
    }

    /// <summary>
    /// Imports a network whose images go through a separate preprocessing graph first (ML.NET's DnnImageFeaturizer models:
    /// <c>ResNetPreprocess.onnx</c> then <c>ResNet18.onnx</c>). The network is imported and verified as by <see cref="Import"/>; the
    /// preprocessing's channel reordering is then folded into the first convolution, and its mean and scale become
    /// <see cref="OnnxImportResult.PretrainedConfig"/> (per-channel: a per-pixel mean image is averaged over each channel).
    /// </summary>
    /// <param name="preprocessPath">The preprocessing graph (see <see cref="OnnxPreprocessing"/>).</param>
    /// <param name="onnxPath">The network.</param>
    /// <param name="architecture">A registered model name.</param>
    /// <param name="pixelScale">The preprocessing's input unit: 255 when it takes 0–255 pixel values, 1 for [0, 1].</param>
    /// <param name="options">As for <see cref="Import"/>.</param>
    /// <param name="tolerance">As for <see cref="Import"/>.</param>
    /// <exception cref="WeightFileException">The preprocessing graph is not of the understood kind, or as for <see cref="Import"/>.</exception>
    public static OnnxImportResult ImportWithPreprocessing(string preprocessPath, string onnxPath, string architecture, double pixelScale = 255,
        ModelOptions? options = null, double tolerance = DefaultTolerance)
    {
        if (!double.IsFinite(pixelScale) || pixelScale <= 0)
            throw new ArgumentOutOfRangeException(nameof(pixelScale), pixelScale, "The pixel scale must be a finite number > 0 (255 for 0–255 input).");
        using var preprocessing = OnnxPreprocessing.Read(preprocessPath);
        var result = Import(onnxPath, architecture, options, tolerance);
        try
        {
            var info = ModelRegistry.Get(architecture);
            var config = preprocessing.ToPretrainedConfig(info, pixelScale, result.Report.NumClasses,
                $"ONNX import of {Path.GetFileName(onnxPath)} with {Path.GetFileName(preprocessPath)}");
            preprocessing.FoldChannelOrder(result.Weights, config.FirstConv);
            result.Weights.Metadata["cnn.mean"] = string.Join(",", config.Mean.Select(m => m.ToString("R", CultureInfo.InvariantCulture)));
            result.Weights.Metadata["cnn.std"] = string.Join(",", config.Std.Select(m => m.ToString("R", CultureInfo.InvariantCulture)));
            var (exact, perChannel) = VerifyPreprocessing(preprocessPath, onnxPath, preprocessing, config, result, pixelScale, tolerance);
            var report = result.Report with { PreprocessedRelativeDifference = exact, PerChannelMeanRelativeDifference = perChannel };
            return new OnnxImportResult(result.Weights, result.Options, report, config);
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs both ONNX graphs (preprocessing, then network) in ONNX Runtime on a random image and our model with the folded weights
    /// on the same image minus the exact mean (moved into the input's channel order): they must agree within the tolerance. Returns
    /// that difference and the one with the per-channel configuration instead (what the mean image's departure from its channel
    /// means costs), both relative to the output's largest value.
    /// </summary>
    private static (double Exact, double PerChannel) VerifyPreprocessing(string preprocessPath, string onnxPath, OnnxPreprocessing preprocessing,
        PretrainedConfig config, OnnxImportResult result, double pixelScale, double tolerance)
    {
        using var scope = torch.NewDisposeScope();
        var prepGraph = new OnnxGraph(preprocessPath);
        var netGraph = new OnnxGraph(onnxPath);
        long[] shape = result.Report.InputShape.ToArray();
        var image = torch.rand(shape, generator: new torch.Generator(20260102)).Times(pixelScale);
        var prepared = OnnxVerifier.RunOnnxRuntime(prepGraph, image, [prepGraph.Output])[prepGraph.Output];
        var reference = OnnxVerifier.RunOnnxRuntime(netGraph, prepared.reshape(shape), [netGraph.Output])[netGraph.Output].reshape(-1);

        int channels = preprocessing.ChannelOrder.Count;
        var inverse = torch.tensor(Enumerable.Range(0, channels).Select(c => (long)preprocessing.ChannelOrder.ToList().IndexOf(c)).ToArray());
        var mean = preprocessing.Mean.numel() == channels ? preprocessing.Mean.reshape(1, channels, 1, 1)
            : preprocessing.Mean.dim() == 3 ? preprocessing.Mean.unsqueeze(0) : preprocessing.Mean;
        var meanInInputOrder = mean.dim() == 4 ? mean.index_select(1, inverse) : mean;
        var configMean = torch.tensor(config.Mean.Select(m => (float)m).ToArray()).reshape(1, channels, 1, 1);
        var configStd = torch.tensor(config.Std.Select(m => (float)m).ToArray()).reshape(1, channels, 1, 1);

        using var model = ModelRegistry.Create(result.Report.Architecture, result.Options);
        model.LoadWeights(result.Weights);
        model.eval();
        using var noGrad = torch.no_grad();
        double scale = Math.Max(reference.abs().max().item<float>(), double.Epsilon);
        double Relative(Tensor input) => (model.call(input).reshape(-1) - reference).abs().max().item<float>() / scale;
        double exact = Relative((image - meanInInputOrder).Times(preprocessing.Scale));
        if (!(exact <= tolerance))
            throw new OnnxImportException(onnxPath,
                string.Create(CultureInfo.InvariantCulture,
                    $"The preprocessing of {preprocessPath} folded into {result.Report.Architecture} is not verified: on a random image, ONNX Runtime " +
                    $"running both graphs and the model with the folded weights differ by {exact:G3} relative (> {tolerance:G3}). Nothing was imported; " +
                    $"check --preprocess and the pixel scale."));
        return (exact, Relative((image.DividedBy(pixelScale) - configMean) / configStd));
    }

    /// <summary>
    /// For architectures whose blocks per stage can vary (<see cref="ModelOptions.BlockCounts"/>, the ResNets): the counts of the
    /// graph, from how often the convolution shapes of a repeated block occur in it (the stages' modules are <c>layer1</c> …).
    /// Null when the architecture has fixed counts, the graph has the architecture's own, or the counts cannot be read off.
    /// </summary>
    private static int[]? InferBlockCounts(OnnxGraph graph, string architecture, ModelOptions options)
    {
        Backbone one, two;
        try
        {
            one = ModelRegistry.Create(architecture, options with { NumClasses = 0, BlockCounts = [1, 1, 1, 1] });
        }
        catch (ArgumentException)
        {
            return null; // fixed block counts
        }
        using (one)
        using (two = ModelRegistry.Create(architecture, options with { NumClasses = 0, BlockCounts = [2, 2, 2, 2] }))
        using (var standard = ModelRegistry.Create(architecture, options with { NumClasses = 0 }))
        {
            static List<(string Name, string Shape)> Convs(Backbone model) =>
                model.named_modules().Where(m => m.module is PrecisionConv2d).Select(m => (m.name, OnnxLayer.Text(((PrecisionConv2d)m.module).weight!.shape))).ToList();
            var convsOne = Convs(one);
            var convsTwo = Convs(two);
            var onnx = graph.Layers.Where(l => l.Kind == LayerKind.Conv).Select(l => OnnxLayer.Text(graph.Shape(l.Weight!))).ToList();
            var counts = new int[4];
            for (int stage = 0; stage < 4; stage++)
            {
                var repeated = convsTwo.Where(c => c.Name.StartsWith($"layer{stage + 1}.1.", StringComparison.Ordinal)).ToList();
                if (repeated.Count == 0) return null;
                string shape = repeated[0].Shape;
                int perBlock = repeated.Count(c => c.Shape == shape);
                int extra = onnx.Count(s => s == shape) - convsOne.Count(c => c.Shape == shape);
                if (extra < 0 || extra % perBlock != 0) return null;
                counts[stage] = 1 + extra / perBlock;
            }
            var own = Enumerable.Range(1, 4).Select(s => Convs(standard).Select(c => c.Name).Where(n => n.StartsWith($"layer{s}.", StringComparison.Ordinal))
                .Select(n => n.Split('.')[1]).Distinct().Count()).ToArray();
            if (counts.SequenceEqual(own)) return null;
            // The counts of another registered variant (a resnet18 graph imported as resnet34): name it rather than build a look-alike.
            var self = ResNetFamily.Architectures.FirstOrDefault(a => a.Name == architecture);
            var twin = self is null ? null : ResNetFamily.Architectures.FirstOrDefault(a =>
                a.Name != self.Name && a.Layers.SequenceEqual(counts) && a with { Name = self.Name, Layers = self.Layers, PretrainedConfig = self.PretrainedConfig } == self);
            if (twin is not null)
                throw new OnnxImportException(graph.Path,
                    $"Cannot import {graph.Path} onto {architecture}: the graph has [{string.Join(", ", counts)}] blocks per stage, which is {twin.Name}, " +
                    $"not {architecture} ([{string.Join(", ", own)}]). Import it as {twin.Name} (cnn import --model {twin.Name}).");
            return counts;
        }
    }

    private static long[] InputShape(OnnxGraph graph, ModelInfo info)
    {
        var dims = graph.InputDims;
        if (dims.Length != 4)
            throw new OnnxImportException(graph.Path, $"Cannot import {graph.Path}: its input '{graph.Input}' has {dims.Length} dimensions; an image model takes N×C×H×W.");
        return
        [
            dims[0] > 0 ? dims[0] : 1,
            dims[1] > 0 ? dims[1] : info.DefaultConfig.InputSize.Channels,
            dims[2] > 0 ? dims[2] : info.DefaultConfig.InputSize.Height,
            dims[3] > 0 ? dims[3] : info.DefaultConfig.InputSize.Width,
        ];
    }

    // The classifier sizes worth trying: the last fully-connected layer's, the output's channels (a convolutional classifier), none.
    private static IEnumerable<int> ClassCandidates(OnnxGraph graph)
    {
        var candidates = new List<int>();
        if (graph.Layers.LastOrDefault(l => l.Kind == LayerKind.Linear) is { } last)
        {
            var shape = graph.Shape(last.Weight!);
            candidates.Add((int)(last.TransposeWeight ? shape[1] : shape[0]));
        }
        if (graph.OutputDims is [_, > 0 and var channels, ..]) candidates.Add((int)channels);
        candidates.Add(0);
        return candidates.Distinct();
    }

    internal static bool Compatible(OnnxGraph graph, ModelLayer ours, OnnxLayer theirs)
    {
        if (ours.Kind != theirs.Kind) return false;
        switch (ours.Kind)
        {
            case LayerKind.Conv:
                if (!graph.Shape(theirs.Weight!).SequenceEqual(ours.WeightShape)) return false;
                if (ours.Norm is null) return theirs.Norm is null && (theirs.Bias is null || ours.HasBias);
                return theirs.Norm is null || graph.Shape(theirs.Norm.Scale)[0] == ours.WeightShape[0];
            case LayerKind.BatchNorm:
                return graph.Shape(theirs.Norm!.Scale)[0] == ours.WeightShape[0];
            case LayerKind.LayerNorm:
                return graph.Shape(theirs.Weight!).SequenceEqual(ours.WeightShape) && (theirs.Bias is null || ours.HasBias);
            default:
                var shape = graph.Shape(theirs.Weight!);
                var mapped = theirs.TransposeWeight ? new[] { shape[1], shape[0] } : shape.ToArray();
                return mapped.SequenceEqual(ours.WeightShape) && (theirs.Bias is null || ours.HasBias) &&
                       (theirs.Bias is null || graph.Shape(theirs.Bias).Aggregate(1L, (a, b) => a * b) == ours.WeightShape[0]);
        }
    }

    /// <summary>
    /// Parameters outside the mapped layer kinds (ConvNeXt's <c>layer_scale</c>) take, in state-dict order, the next constant of the
    /// same shape that feeds an elementwise node of the graph; they are loaded into the model at once, so the pairing along the data
    /// flow and the verification check them.
    /// </summary>
    private static List<(string Key, string Onnx)> MatchLoose(OnnxGraph graph, Backbone model, IReadOnlyList<string> keys, string architecture)
    {
        var result = new List<(string, string)>();
        if (keys.Count == 0) return result;
        var live = model.state_dict();
        var constants = graph.LooseConstants().ToList();
        foreach (var key in keys)
        {
            int found = constants.FindIndex(c => graph.Shape(c).SequenceEqual(live[key].shape));
            if (found < 0)
                throw new OnnxImportException(graph.Path,
                    $"Cannot import {graph.Path} onto {architecture}: the parameter '{key}' {OnnxLayer.Text(live[key].shape)} is outside the layer kinds the importer " +
                    "pairs along the data flow (convolutions, BatchNorm, LayerNorm, linear), and no constant of that shape is left in the graph's elementwise operations.");
            result.Add((key, constants[found]));
            constants.RemoveAt(found);
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            live[key].copy_(graph.Tensor(result[^1].Item2));
        }
        return result;
    }

    private static OnnxImportResult Build(OnnxGraph graph, Backbone model, List<(ModelLayer Ours, OnnxLayer Theirs)> pairs, List<(string Key, string Onnx)> loose, string architecture,
        ModelOptions options, Tensor input, IReadOnlyDictionary<string, Tensor> onnx, double tolerance)
    {
        var assigned = new Dictionary<string, Assignment>(StringComparer.Ordinal);
        var weights = new StateDict();
        try
        {
            using (var scope = torch.NewDisposeScope())
            {
                foreach (var (ours, theirs) in pairs)
                    foreach (var a in Assign(graph, ours, theirs))
                        assigned[a.Key] = a with { Value = a.Value.to(ScalarType.Float32).contiguous().DetachFromDisposeScope() };
                foreach (var (key, onnxName) in loose)
                    assigned[key] = new Assignment(key, graph.Tensor(onnxName).to(ScalarType.Float32).contiguous().DetachFromDisposeScope(), onnxName,
                        "by shape and order (a parameter outside the layers)");
            }
            var entries = new List<OnnxMappingEntry>();
            var missing = new List<string>();
            foreach (var (key, tensor) in model.state_dict())
            {
                if (assigned.Remove(key, out var a))
                {
                    weights.Add(key, a.Value);
                    entries.Add(new OnnxMappingEntry(key, tensor.shape, a.OnnxTensor, a.OnnxTensor is null ? null : graph.Shape(a.OnnxTensor), a.Note));
                }
                else if (TensorInfo.IsBatchCounter(key))
                {
                    weights.Add(key, torch.zeros(tensor.shape, tensor.dtype));
                    entries.Add(new OnnxMappingEntry(key, tensor.shape, null, null, "0 (not stored in ONNX)"));
                }
                else
                {
                    missing.Add(key);
                }
            }
            if (missing.Count > 0)
                throw new OnnxImportException(graph.Path,
                    $"Cannot import {graph.Path} onto {architecture}: {missing.Count} state-dict entries did not run in the traced forward pass, so the " +
                    $"ONNX graph cannot supply them: {StateDict.Preview(missing, 4)}. Build the architecture without them " +
                    "(e.g. ModelOptions.AuxLogits = false for auxiliary classifiers).");
            model.LoadWeights(weights);
            var (maxDiff, maxRef) = OnnxVerifier.Verify(graph, model, pairs, input, onnx, tolerance, architecture);
            var report = new OnnxImportReport(graph.Path, architecture, options.NumClasses, entries, input.shape, maxDiff, maxRef, pairs.Count);
            return new OnnxImportResult(weights, options, report);
        }
        catch
        {
            weights.Dispose();
            foreach (var a in assigned.Values) a.Value.Dispose();
            throw;
        }
    }

    internal static IEnumerable<Assignment> Assign(OnnxGraph graph, ModelLayer ours, OnnxLayer theirs)
    {
        string prefix = ours.Name + ".";
        switch (ours.Kind)
        {
            case LayerKind.Conv:
                yield return new Assignment(prefix + "weight", graph.Tensor(theirs.Weight!), theirs.Weight, "");
                long channels = ours.WeightShape[0];
                var onnxBias = theirs.Bias is null ? null : graph.Tensor(theirs.Bias).reshape(channels);
                if (ours.Norm is null)
                {
                    if (ours.HasBias) yield return new Assignment(prefix + "bias", onnxBias ?? torch.zeros(channels), theirs.Bias, onnxBias is null ? "0 (no bias in ONNX)" : "");
                    yield break;
                }
                if (ours.HasBias) yield return new Assignment(prefix + "bias", torch.zeros(channels), null, "0 (the ONNX bias goes to the BatchNorm)");
                string norm = ours.NormName + ".";
                if (theirs.Norm is null)
                {
                    // Folded by the exporter: y = conv(x) + b. BatchNorm with γ = 1, β = b, mean 0 and var = 1 − ε computes exactly that.
                    double eps = ours.Norm.eps;
                    yield return new Assignment(norm + "weight", torch.ones(channels), null, "1 (BatchNorm folded into the ONNX Conv)");
                    yield return new Assignment(norm + "bias", onnxBias ?? torch.zeros(channels), theirs.Bias, "the folded Conv's bias");
                    yield return new Assignment(norm + "running_mean", torch.zeros(channels), null, "0 (BatchNorm folded into the ONNX Conv)");
                    yield return new Assignment(norm + "running_var", Scalars.Filled([channels], 1 - eps), null,
                        string.Create(CultureInfo.InvariantCulture, $"1 − ε = {1 - eps} (BatchNorm folded into the ONNX Conv)"));
                    yield break;
                }
                foreach (var a in NormAssignments(graph, theirs.Norm, norm, ours.Norm.eps, onnxBias, theirs.Bias)) yield return a;
                yield break;
            case LayerKind.BatchNorm:
                foreach (var a in NormAssignments(graph, theirs.Norm!, prefix, ((FoldableBatchNorm2d)ours.Module).eps, null, null)) yield return a;
                yield break;
            case LayerKind.LayerNorm:
                yield return new Assignment(prefix + "weight", graph.Tensor(theirs.Weight!), theirs.Weight, "");
                if (ours.HasBias)
                    yield return new Assignment(prefix + "bias", theirs.Bias is null ? torch.zeros(ours.WeightShape) : graph.Tensor(theirs.Bias), theirs.Bias, theirs.Bias is null ? "0 (no bias in ONNX)" : "");
                yield break;
            default:
            {
                var weight = graph.Tensor(theirs.Weight!);
                if (theirs.TransposeWeight) weight = weight.t();
                // Explicit scalars, kept alive across the native call (a temporary implicit Scalar can be finalised mid-call).
                using var alpha = theirs.Alpha.ToScalar();
                using var beta = theirs.Beta.ToScalar();
                if (theirs.Alpha != 1) weight = weight.mul(alpha);
                yield return new Assignment(prefix + "weight", weight, theirs.Weight, (theirs.TransposeWeight ? "transposed" : "") + (theirs.Alpha != 1 ? $" × alpha {theirs.Alpha}" : ""));
                if (!ours.HasBias) yield break;
                var bias = theirs.Bias is null ? torch.zeros(ours.WeightShape[0]) : graph.Tensor(theirs.Bias).reshape(-1).mul(beta);
                yield return new Assignment(prefix + "bias", bias, theirs.Bias, theirs.Bias is null ? "0 (no bias in ONNX)" : theirs.Beta != 1 ? $"× beta {theirs.Beta}" : "");
                yield break;
            }
        }
    }

    // An ONNX BatchNormalization kept by the exporter: copied, with a preceding Conv's bias moved into the mean and the variance
    // shifted by the difference of epsilons (so that var + ε is the same in both).
    private static IEnumerable<Assignment> NormAssignments(OnnxGraph graph, OnnxNorm norm, string prefix, double eps, Tensor? convBias, string? convBiasName)
    {
        yield return new Assignment(prefix + "weight", graph.Tensor(norm.Scale), norm.Scale, "");
        yield return new Assignment(prefix + "bias", graph.Tensor(norm.Bias), norm.Bias, "");
        var mean = graph.Tensor(norm.Mean);
        yield return new Assignment(prefix + "running_mean", convBias is null ? mean : mean - convBias, norm.Mean, convBias is null ? "" : $"minus the Conv bias '{convBiasName}'");
        var variance = graph.Tensor(norm.Var).to(ScalarType.Float64);
        string note = "";
        if (Math.Abs(norm.Epsilon - eps) > 1e-12)
        {
            variance = variance.Plus(norm.Epsilon - eps);
            note = string.Create(CultureInfo.InvariantCulture, $"+ ε difference {norm.Epsilon - eps:G3} (ONNX ε {norm.Epsilon:G3}, ours {eps:G3})");
            if (variance.min().item<double>() < 0)
                throw new OnnxImportException(graph.Path,
                    $"Cannot import {graph.Path}: BatchNormalization '{norm.NodeName}' has ε = {norm.Epsilon:G3} and a variance below the architecture's ε = {eps:G3}; the ε cannot be matched.", norm.Var);
        }
        yield return new Assignment(prefix + "running_var", variance, norm.Var, note);
    }
}
