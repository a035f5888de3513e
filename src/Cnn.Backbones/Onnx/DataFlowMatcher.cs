using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Onnx;

/// <summary>
/// Pairs our layers with ONNX layers along the data flow. Our model runs once on the input ONNX Runtime was given; just before
/// each layer runs (a forward pre-hook), its input is compared with the inputs of the not-yet-paired ONNX layers of the same kind
/// and weight shape, the one whose input is the same tensor is taken, and its weights are loaded into the layer before it runs.
/// So a layer is only paired with an ONNX layer that sees the same data, whatever order the two graphs list their branches in.
/// Where several ONNX layers see the same input with the same shapes (parallel branches of an Inception module), the first is
/// tried and the choice is revisited (depth-first) when a later layer finds no counterpart.
/// </summary>
internal static class DataFlowMatcher
{
    /// <summary>How far apart two inputs may be and still be "the same tensor" (relative to the ONNX input's largest value).
    /// Looser than the final verification: it only has to tell different tensors apart.</summary>
    private const double SameInput = 1e-3;

    private const int MaxAttempts = 128;

    private sealed class DeadEnd(int depth, string reason) : Exception(reason)
    {
        public int Depth { get; } = depth;
    }

    /// <summary>The pairs in our execution order, or null with the most informative reason (from the attempt that got furthest).</summary>
    public static List<(ModelLayer Ours, OnnxLayer Theirs)>? Match(OnnxGraph graph, nn.Module<Tensor, Tensor> model, IReadOnlyList<ModelLayer> layers,
        Tensor input, IReadOnlyDictionary<string, Tensor> onnx, string architecture, out string? failure)
    {
        var live = model.state_dict();
        var decisions = new List<(int Choice, int Count)>();
        DeadEnd? deepest = null;
        for (int attempt = 0; attempt < MaxAttempts; attempt++)
        {
            var used = new bool[graph.Layers.Count];
            var pairs = new List<(ModelLayer, OnnxLayer)>();
            int tie = 0;
            var hooks = new List<Action>();
            foreach (var layer in layers)
            {
                var handle = ((nn.Module<Tensor, Tensor>)layer.Module).register_forward_pre_hook((m, x) =>
                {
                    var candidates = Enumerable.Range(0, used.Length).Where(j => !used[j] && OnnxImporter.Compatible(graph, layer, graph.Layers[j])).ToList();
                    if (candidates.Count == 0)
                    {
                        int next = Array.IndexOf(used, false);
                        throw new DeadEnd(pairs.Count,
                            $"{layer.Describe()} has no ONNX counterpart of the same kind and shape " +
                            $"({(next >= 0 ? "the next unmapped ONNX layer is " + graph.Layers[next].Describe(graph) : "every ONNX layer is already mapped")})");
                    }
                    var fitting = candidates.Where(j => Same(x, onnx[graph.Layers[j].Input])).ToList();
                    if (fitting.Count == 0)
                        throw new DeadEnd(pairs.Count,
                            $"the input of {layer.Describe()} matches the input of none of the ONNX layers of that kind and shape " +
                            $"({string.Join(", ", candidates.Take(2).Select(j => graph.Layers[j].Describe(graph)))}{(candidates.Count > 2 ? ", …" : "")}): " +
                            "the operations between the layers differ");
                    int pick;
                    if (fitting.Count == 1)
                    {
                        pick = fitting[0];
                    }
                    else
                    {
                        if (tie == decisions.Count) decisions.Add((0, fitting.Count));
                        pick = fitting[decisions[tie].Choice];
                        tie++;
                    }
                    used[pick] = true;
                    pairs.Add((layer, graph.Layers[pick]));
                    using var scope = torch.NewDisposeScope();
                    foreach (var a in OnnxImporter.Assign(graph, layer, graph.Layers[pick]))
                        live[a.Key].copy_(a.Value);
                    return x;
                });
                hooks.Add(handle.remove);
                // Once the layer (with its BatchNorm) has run, its output must be the paired ONNX layer's.
                var outputModule = layer.Norm is null ? layer.Module : layer.Norm;
                var after = ((nn.Module<Tensor, Tensor>)outputModule).register_forward_hook((m, x, y) =>
                {
                    var theirs = pairs[^1].Item2;
                    if (!Same(y, onnx[theirs.Output]))
                        throw new DeadEnd(pairs.Count,
                            $"the first mismatch is the output of {layer.Describe()}: its input is that of {theirs.Describe(graph)}, but its output " +
                            $"differs from ONNX value '{theirs.Output}' (the ONNX layer has other strides, padding, groups or dilation, or is followed by another operation)");
                    return y;
                });
                hooks.Add(after.remove);
            }
            try
            {
                using var scope = torch.NewDisposeScope();
                using var noGrad = torch.no_grad();
                model.eval();
                model.call(input);
                int left = Array.IndexOf(used, false);
                if (left >= 0)
                    throw new DeadEnd(pairs.Count,
                        $"{used.Count(u => !u)} ONNX layer(s) have no counterpart in the architecture, the first {graph.Layers[left].Describe(graph)}");
                failure = null;
                return pairs;
            }
            catch (DeadEnd end)
            {
                if (deepest is null || end.Depth > deepest.Depth) deepest = end;
                while (decisions.Count > 0 && decisions[^1].Choice + 1 >= decisions[^1].Count) decisions.RemoveAt(decisions.Count - 1);
                if (decisions.Count == 0) break;
                decisions[^1] = (decisions[^1].Choice + 1, decisions[^1].Count);
            }
            finally
            {
                foreach (var remove in hooks) remove();
            }
        }
        failure = $"Cannot map {graph.Path} onto {architecture}: {deepest?.Message ?? $"no pairing found in {MaxAttempts} attempts"}. " +
                  "The file may hold another variant (other widths or block counts) or another architecture; try the matching model name.";
        return null;
    }

    private static bool Same(Tensor ours, Tensor reference)
    {
        using var scope = torch.NewDisposeScope();
        if (OnnxVerifier.Align(ours, reference) is not { } a) return false;
        double scale = reference.abs().max().item<float>();
        double diff = (a - reference).abs().max().item<float>();
        return diff <= SameInput * Math.Max(scale, 1e-12);
    }
}
