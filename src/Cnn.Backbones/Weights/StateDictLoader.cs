using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Weights;

/// <summary>Copies a <see cref="StateDict"/> into a module's parameters and buffers, as PyTorch's <c>load_state_dict</c> does.</summary>
public static class StateDictLoader
{
    /// <summary>
    /// Matches <paramref name="weights"/> against the module's <c>state_dict()</c> (parameters and persistent buffers,
    /// including BatchNorm running statistics and <c>num_batches_tracked</c>) by name, and copies matching values in place
    /// without recording gradients, converting to the module's dtype and device (e.g. a float16 file into a float32 model).
    /// </summary>
    /// <param name="module">The module to fill.</param>
    /// <param name="weights">The weights; they are not modified or disposed.</param>
    /// <param name="strict">
    /// True (default): every module entry must be in the file with the same shape and the file must have nothing else;
    /// otherwise a <see cref="WeightLoadException"/> is thrown and the module is left unchanged (everything is checked before
    /// anything is copied). False: copy what fits, skip the rest, and say what was skipped in the report.
    /// </param>
    /// <returns>What was loaded and skipped.</returns>
    /// <exception cref="WeightLoadException">Strict mode and the weights do not fit exactly.</exception>
    public static WeightLoadReport Load(nn.Module module, StateDict weights, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(weights);
        var target = module.state_dict();
        var missing = new List<string>();
        var mismatches = new List<ShapeMismatch>();
        var plan = new List<(Tensor Destination, Tensor Source)>();
        foreach (var (name, destination) in target)
        {
            if (!weights.TryGetValue(name, out var source))
            {
                missing.Add(name);
                continue;
            }
            if (!destination.shape.SequenceEqual(source.shape))
            {
                mismatches.Add(new ShapeMismatch(name, destination.shape, source.shape));
                continue;
            }
            plan.Add((destination, source));
        }
        var unexpected = weights.Keys.Where(k => !target.ContainsKey(k)).ToList();

        if (strict && (missing.Count > 0 || unexpected.Count > 0 || mismatches.Count > 0))
            throw new WeightLoadException(new WeightLoadReport(missing, unexpected, mismatches, 0));

        using (torch.no_grad())
        {
            foreach (var (destination, source) in plan)
            {
                using var scope = torch.NewDisposeScope();
                destination.copy_(source);
            }
        }
        return new WeightLoadReport(missing, unexpected, mismatches, plan.Count);
    }
}
