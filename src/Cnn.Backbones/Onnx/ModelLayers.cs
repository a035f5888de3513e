using Cnn.Backbones.Compute;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Onnx;

/// <summary>
/// One layer with weights of our model, in execution order: a convolution (with the BatchNorm that directly consumes its output,
/// when there is one), a BatchNorm or LayerNorm on its own, or a linear layer. Names are module paths (state-dict prefixes).
/// </summary>
internal sealed record ModelLayer(LayerKind Kind, string Name, nn.Module Module, string? NormName, FoldableBatchNorm2d? Norm)
{
    /// <summary>The module whose output is the layer's output (the BatchNorm when there is one).</summary>
    public string OutputModule => NormName ?? Name;

    public long[] WeightShape => Weight.shape;

    public Tensor Weight => Own("weight") ?? throw new InvalidOperationException($"'{Name}' has no weight.");

    public bool HasBias => Own("bias") is not null;

    public string Describe() => $"{Module.GetName()} '{Name}' {OnnxLayer.Text(WeightShape)}" + (NormName is null ? "" : $" + BatchNorm2d '{NormName}'");

    private Tensor? Own(string name) => Module.named_parameters(recurse: false).FirstOrDefault(p => p.name == name).parameter;
}

/// <summary>Finds the layers with weights of a model by running it once with hooks, and records layer outputs on demand.</summary>
internal static class ModelLayers
{
    /// <summary>
    /// Runs <paramref name="model"/> (eval mode, no grad) on <paramref name="input"/> and returns its layers with weights in the order
    /// they executed. Modules that run twice are reported as unsupported; the parameters of modules of other kinds (ConvNeXt's
    /// <c>layer_scale</c>, …) are returned as <paramref name="loose"/> state-dict keys.
    /// </summary>
    public static IReadOnlyList<ModelLayer> Trace(nn.Module<Tensor, Tensor> model, Tensor input, out IReadOnlyList<string> unsupported, out IReadOnlyList<string> loose)
    {
        var looseKeys = new List<string>();
        var calls = new List<(string Name, nn.Module Module, bool TakesPrevious, Tensor Output)>();
        var problems = new List<string>();
        var hooks = new List<Action>();
        foreach (var (name, module) in model.named_modules())
        {
            if (string.IsNullOrEmpty(name) || !module.named_parameters(recurse: false).Any()) continue;
            if (!IsLayer(module))
            {
                looseKeys.AddRange(module.named_parameters(recurse: false).Select(p => $"{name}.{p.name}"));
                continue;
            }
            var handle = ((nn.Module<Tensor, Tensor>)module).register_forward_hook((m, x, y) =>
            {
                // A BatchNorm pairs with the convolution that ran just before it when it takes that convolution's output.
                bool takesPrevious = calls.Count > 0 && calls[^1].Module is PrecisionConv2d && SameTensor(calls[^1].Output, x);
                calls.Add((name, module, takesPrevious, y));
                return y;
            });
            hooks.Add(handle.remove);
        }
        using (var scope = torch.NewDisposeScope())
        {
            try
            {
                using var noGrad = torch.no_grad();
                model.eval();
                model.call(input);
            }
            finally
            {
                foreach (var remove in hooks) remove();
            }
        }

        foreach (var repeated in calls.GroupBy(c => c.Name).Where(g => g.Count() > 1))
            problems.Add($"'{repeated.Key}' (runs {repeated.Count()} times in one forward pass)");
        var layers = new List<ModelLayer>();
        for (int i = 0; i < calls.Count; i++)
        {
            var (name, module, _, _) = calls[i];
            switch (module)
            {
                case PrecisionConv2d when i + 1 < calls.Count && calls[i + 1] is { Module: FoldableBatchNorm2d bn, TakesPrevious: true }:
                    layers.Add(new ModelLayer(LayerKind.Conv, name, module, calls[i + 1].Name, bn));
                    i++;
                    break;
                case PrecisionConv2d:
                    layers.Add(new ModelLayer(LayerKind.Conv, name, module, null, null));
                    break;
                case PrecisionLinear:
                    layers.Add(new ModelLayer(LayerKind.Linear, name, module, null, null));
                    break;
                case LayerNorm or Models.LayerNorm2d:
                    layers.Add(new ModelLayer(LayerKind.LayerNorm, name, module, null, null));
                    break;
                default:
                    layers.Add(new ModelLayer(LayerKind.BatchNorm, name, module, null, null));
                    break;
            }
        }
        unsupported = problems;
        loose = looseKeys;
        return layers;
    }

    /// <summary>
    /// Runs the model on <paramref name="input"/> and returns its output with a copy of the output of each named module
    /// (copied when produced, since later in-place activations change it). The caller owns (and disposes) the tensors.
    /// </summary>
    public static (Tensor Output, Dictionary<string, Tensor> Layers) Record(nn.Module<Tensor, Tensor> model, Tensor input, IReadOnlySet<string> modules)
    {
        var outputs = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var hooks = new List<Action>();
        foreach (var (name, module) in model.named_modules())
        {
            if (!modules.Contains(name) || module is not nn.Module<Tensor, Tensor> hookable) continue;
            var handle = hookable.register_forward_hook((m, x, y) =>
            {
                outputs[name] = y.detach().clone().DetachFromDisposeScope();
                return y;
            });
            hooks.Add(handle.remove);
        }
        try
        {
            using var noGrad = torch.no_grad();
            model.eval();
            return (model.call(input), outputs);
        }
        finally
        {
            foreach (var remove in hooks) remove();
        }
    }

    private static bool IsLayer(nn.Module module) => module is PrecisionConv2d or FoldableBatchNorm2d or PrecisionLinear or LayerNorm or Models.LayerNorm2d;

    private static bool SameTensor(Tensor a, Tensor b) => ReferenceEquals(a, b) || (!a.IsInvalid && !b.IsInvalid && a.Handle == b.Handle);
}
