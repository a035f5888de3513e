using System.Globalization;

namespace Cnn.Benchmarks;

/// <summary>
/// Where one training step's time goes, in milliseconds: the whole step; the forward pass (input to float32 logits), and within
/// it the BatchNorm layers and the mixed-precision casts; <c>loss.backward()</c>; the optimizer's step; and the rest of the step
/// on the host (the loss, <c>zero_grad</c>, reading the loss with <c>item</c>, freeing the step's tensors).
/// </summary>
internal sealed record StepPhases(double Total, double Forward, double BatchNorm, double Casts, double Backward, double Optimizer, double Host)
{
    /// <summary>The forward pass less its BatchNorm and casts: the convolutions, activations, pooling and the rest.</summary>
    public double ForwardRest => Forward - BatchNorm - Casts;

    /// <summary>Each phase's median over <paramref name="steps"/> (so the medians need not add up to the median total).</summary>
    public static StepPhases Median(IReadOnlyList<StepPhases> steps) => new(
        Median(steps, s => s.Total), Median(steps, s => s.Forward), Median(steps, s => s.BatchNorm), Median(steps, s => s.Casts),
        Median(steps, s => s.Backward), Median(steps, s => s.Optimizer), Median(steps, s => s.Host));

    /// <summary>Reads the seven figures in the order of the constructor, as <see cref="ToString"/> writes them.</summary>
    public static StepPhases Parse(IReadOnlyList<string> values)
    {
        var v = values.Take(7).Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        return new(v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
    }

    /// <summary>The seven figures in milliseconds, space-separated, invariant culture (what <see cref="Parse"/> reads).</summary>
    public override string ToString() =>
        FormattableString.Invariant($"{Total:0.###} {Forward:0.###} {BatchNorm:0.###} {Casts:0.###} {Backward:0.###} {Optimizer:0.###} {Host:0.###}");

    /// <summary>The phases that make up a step, by name, forward split into its parts: where a step's time goes.</summary>
    public IEnumerable<(string Name, double Milliseconds)> Parts() =>
    [
        ("forward (rest)", ForwardRest), ("forward BatchNorm", BatchNorm), ("forward casts", Casts), ("backward", Backward),
        ("optimizer", Optimizer), ("zero_grad+host", Host),
    ];

    private static double Median(IReadOnlyList<StepPhases> steps, Func<StepPhases, double> phase)
    {
        var sorted = steps.Select(phase).Order().ToArray();
        return sorted.Length == 0 ? 0 : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
