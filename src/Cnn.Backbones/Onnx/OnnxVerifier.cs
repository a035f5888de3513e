using System.Globalization;
using Cnn.Backbones.Native;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Onnx;

/// <summary>
/// Verifies a mapping by execution: ONNX Runtime runs the ONNX model (with every mapped layer's output added to the graph's
/// outputs) and our model runs with the mapped weights, on the same seeded random input. Layers are compared in execution
/// order, then the graph's output; the first one beyond the tolerance is named in the exception.
/// </summary>
internal static class OnnxVerifier
{
    public static (double MaxDiff, double MaxRef) Verify(OnnxGraph graph, nn.Module<Tensor, Tensor> model,
        IReadOnlyList<(ModelLayer Ours, OnnxLayer Theirs)> pairs, Tensor input, IReadOnlyDictionary<string, Tensor> theirs, double tolerance, string architecture)
    {
        using var scope = torch.NewDisposeScope();
        var (output, layers) = ModelLayers.Record(model, input, pairs.Select(p => p.Ours.OutputModule).ToHashSet(StringComparer.Ordinal));
        try
        {
            foreach (var (ours, onnx) in pairs)
            {
                if (!layers.TryGetValue(ours.OutputModule, out var mine))
                    throw Mismatch(graph, architecture, $"'{ours.OutputModule}' did not run in the verification pass");
                var (diff, scale, index) = Compare(mine, theirs[onnx.Output]);
                if (index is not null)
                    throw Mismatch(graph, architecture,
                        $"the first mismatch is at {ours.Describe()} ← {onnx.Describe(graph)} (ONNX value '{onnx.Output}'): {index}, " +
                        string.Create(CultureInfo.InvariantCulture, $"max |difference| {diff:G4} against a scale of {scale:G4} (relative {diff / Math.Max(scale, double.Epsilon):G3} > {tolerance:G3})"));
            }
            var (maxDiff, maxRef, where) = Compare(output, theirs[graph.Output]);
            if (where is not null)
                throw Mismatch(graph, architecture,
                    $"the layers agree but the graph output '{graph.Output}' differs: {where}, " +
                    string.Create(CultureInfo.InvariantCulture, $"max |difference| {maxDiff:G4} against a scale of {maxRef:G4}"));
            return (maxDiff, maxRef);

            (double Diff, double Scale, string? Where) Compare(Tensor ours, Tensor reference)
            {
                using var inner = torch.NewDisposeScope();
                if (Align(ours, reference) is not { } aligned)
                    return (double.PositiveInfinity, 0, $"shapes differ (ours {OnnxLayer.Text(ours.shape)}, ONNX Runtime {OnnxLayer.Text(reference.shape)})");
                var flat = aligned.reshape(-1);
                reference = reference.reshape(-1);
                double scale = reference.abs().max().item<float>();
                var difference = (flat - reference).abs();
                double diff = difference.max().item<float>();
                if (diff <= tolerance * scale) return (diff, scale, null);
                long i = difference.GreaterThan(tolerance * scale).nonzero()[0, 0].item<long>();
                return (diff, scale, string.Create(CultureInfo.InvariantCulture,
                    $"element {i} is {flat[i].item<float>():G6} here and {reference[i].item<float>():G6} in ONNX Runtime"));
            }
        }
        finally
        {
            foreach (var t in layers.Values) t.Dispose();
        }
    }

    /// <summary>
    /// Our tensor laid out as ONNX Runtime's, or null when the two cannot be the same value: equal shapes; NCHW against a
    /// channels-last NHWC value (ConvNeXt's LayerNorms run on transposed maps in ONNX); or the same elements in another shape
    /// (a flattened input of a Gemm). The result is a float32 CPU tensor in the current dispose scope.
    /// </summary>
    internal static Tensor? Align(Tensor ours, Tensor reference)
    {
        var x = ours.detach().cpu().to(ScalarType.Float32);
        if (x.shape.SequenceEqual(reference.shape)) return x;
        if (x.dim() == 4 && reference.dim() == 4)
        {
            var channelsLast = x.permute(0, 2, 3, 1);
            if (channelsLast.shape.SequenceEqual(reference.shape)) return channelsLast.contiguous();
        }
        return x.numel() == reference.numel() ? x.contiguous().reshape(reference.shape) : null;
    }

    private static OnnxImportException Mismatch(OnnxGraph graph, string architecture, string what) =>
        new(graph.Path,
            $"The mapping of {graph.Path} onto {architecture} is not verified: run on the same random input, {what}. " +
            "Nothing was imported. The ONNX model computes something the architecture does not (another variant, other options such as " +
            "transform_input, or preprocessing inside the graph); check --model and the model options.");

    /// <summary>
    /// Runs the ONNX model on <paramref name="input"/> with ONNX Runtime and returns the named values (flattened float tensors in the
    /// current dispose scope); intermediate values are added to the graph's outputs for that.
    /// </summary>
    public static Dictionary<string, Tensor> RunOnnxRuntime(OnnxGraph graph, Tensor input, IEnumerable<string> names)
    {
        var outputs = names.Where(n => n != graph.Input).Distinct().ToList();
        var model = graph.Model.Clone();
        var existing = model.Graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var name in outputs)
            if (existing.Add(name))
                model.Graph.Output.Add(new ValueInfoProto { Name = name });
        try
        {
            var values = OnnxRuntimeRunner.Run(model.ToByteArray(), graph.Input, input, outputs);
            var result = new Dictionary<string, Tensor>(StringComparer.Ordinal) { [graph.Input] = input };
            for (int i = 0; i < outputs.Count; i++) result[outputs[i]] = values[i];
            return result;
        }
        catch (OnnxRuntimeException ex)
        {
            throw new OnnxImportException(graph.Path,
                $"ONNX Runtime could not run {graph.Path} to verify the import ({ex.Message.ReplaceLineEndings(" ")}). The model may need a newer opset or be damaged.", inner: ex);
        }
    }
}
