using Cnn.Backbones.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Training;

/// <summary>
/// A CutMix box in coordinates relative to the image, so that images of different sizes (a student's and a teacher's view of
/// the same batch) get the same box: centre (row, column) in [0, 1) and the side ratio √(1 − λ).
/// </summary>
/// <param name="CenterY">Centre row as a fraction of the height.</param>
/// <param name="CenterX">Centre column as a fraction of the width.</param>
/// <param name="CutRatio">Side of the box as a fraction of each side.</param>
internal readonly record struct CutBox(double CenterY, double CenterX, double CutRatio)
{
    /// <summary>timm's <c>rand_bbox</c> in pixels for an image of <paramref name="height"/> × <paramref name="width"/>: rows [Top, Bottom), columns [Left, Right).</summary>
    public (long Top, long Bottom, long Left, long Right) Pixels(long height, long width)
    {
        long cutH = (long)(height * CutRatio), cutW = (long)(width * CutRatio);
        long cy = Math.Min((long)(CenterY * height), height - 1), cx = Math.Min((long)(CenterX * width), width - 1);
        return (Math.Clamp(cy - cutH / 2, 0, height), Math.Clamp(cy + cutH / 2, 0, height),
                Math.Clamp(cx - cutW / 2, 0, width), Math.Clamp(cx + cutW / 2, 0, width));
    }
}

/// <summary>What one batch gets: no mixing (λ = 1), mixup with λ, or CutMix with a box of area fraction about 1 − λ.</summary>
/// <param name="Lambda">The sampled λ (for CutMix, before the area correction).</param>
/// <param name="Box">The CutMix box, or null for mixup.</param>
internal readonly record struct MixDecision(double Lambda, CutBox? Box)
{
    /// <summary>The batch is left as it is.</summary>
    public bool IsIdentity => Box is null && Lambda == 1;
}

/// <summary>
/// timm's <c>Mixup</c> in its per-batch mode: with probability <see cref="CnnFitOptions.MixupProbability"/> a batch is mixed
/// with its reverse (row i with row N − 1 − i), by mixup (λ ~ Beta(α, α) blend) or CutMix (a pasted box; λ corrected to the
/// box's area), chosen by <see cref="CnnFitOptions.MixupSwitchProbability"/> when both are on; targets are the smoothed one-hot
/// labels mixed the same way (<see cref="Targets"/>) and the loss is the soft-target cross-entropy. Each batch's decision is
/// drawn from a generator seeded by (seed, epoch, batch), so a run and a resumed run mix alike.
/// </summary>
internal sealed class BatchMixer
{
    private readonly CnnFitOptions _options;

    /// <param name="options">The run's mixup and CutMix settings and seed.</param>
    public BatchMixer(CnnFitOptions options) => _options = options;

    /// <summary>True when batches may be mixed (an α above 0 and a probability above 0).</summary>
    public bool Enabled => (_options.MixupAlpha > 0 || _options.CutMixAlpha > 0) && _options.MixupProbability > 0;

    /// <summary>The decision for batch <paramref name="batch"/> (1-based) of epoch <paramref name="epoch"/> (0-based).</summary>
    public MixDecision Decide(int epoch, int batch)
    {
        var o = _options;
        if (!Enabled) return new MixDecision(1, null);
        // A seed stable across processes (HashCode is randomised per process), so a resumed run mixes as the first one did.
        var random = new Random(Data.ImageBatcher.Mix(o.Seed ^ 0x6d697875, epoch, batch));
        if (!(random.NextDouble() < o.MixupProbability)) return new MixDecision(1, null);
        bool cutMix = o.MixupAlpha > 0 && o.CutMixAlpha > 0 ? random.NextDouble() < o.MixupSwitchProbability : o.CutMixAlpha > 0;
        double lambda = BetaSampler.Sample(random, cutMix ? o.CutMixAlpha : o.MixupAlpha);
        if (!cutMix) return new MixDecision(lambda, null);
        return new MixDecision(lambda, new CutBox(random.NextDouble(), random.NextDouble(), Math.Sqrt(1 - lambda)));
    }

    /// <summary>
    /// Mixes <paramref name="images"/> [N, C, H, W] as <paramref name="decision"/> says (a new tensor) and returns the λ the targets
    /// take: the sampled one for mixup, 1 − box area / image area for CutMix (timm's <c>correct_lam</c>).
    /// </summary>
    public static (Tensor Images, double Lambda) Apply(Tensor images, MixDecision decision)
    {
        if (decision.IsIdentity) return (images.alias(), 1);
        using var scope = NewDisposeScope();
        var flipped = images.flip(0);
        if (decision.Box is not { } box)
            return (images.Times(decision.Lambda).Plus(flipped.Times(1 - decision.Lambda)).MoveToOuterDisposeScope(), decision.Lambda);
        long h = images.shape[2], w = images.shape[3];
        var (top, bottom, left, right) = box.Pixels(h, w);
        var mixed = images.clone();
        if (bottom > top && right > left)
        {
            var rows = TensorIndex.Slice(top, bottom);
            var columns = TensorIndex.Slice(left, right);
            mixed[TensorIndex.Colon, TensorIndex.Colon, rows, columns] = flipped[TensorIndex.Colon, TensorIndex.Colon, rows, columns];
        }
        double lambda = 1 - (double)((bottom - top) * (right - left)) / (h * w);
        return (mixed.MoveToOuterDisposeScope(), lambda);
    }

    /// <summary>
    /// timm's <c>mixup_target</c>: smoothed one-hot targets (1 − ε + ε/C on the class, ε/C elsewhere) of <paramref name="labels"/>
    /// and of the reversed labels, blended <c>λ·y + (1 − λ)·flip(y)</c>; [N, C] float32.
    /// </summary>
    public static Tensor Targets(Tensor labels, int classes, double lambda, double smoothing)
    {
        using var scope = NewDisposeScope();
        double off = smoothing / classes, on = 1 - smoothing + off;
        var oneHot = nn.functional.one_hot(labels, classes).to(ScalarType.Float32).Times(on - off).Plus(off);
        return oneHot.Times(lambda).Plus(oneHot.flip(0).Times(1 - lambda)).MoveToOuterDisposeScope();
    }

    /// <summary>timm's <c>SoftTargetCrossEntropy</c>: <c>mean over rows of Σ −target · log_softmax(logits)</c>.</summary>
    public static Tensor SoftTargetCrossEntropy(Tensor logits, Tensor targets) =>
        (-targets * nn.functional.log_softmax(logits, 1)).sum(1).mean();
}

/// <summary>Samples Beta(α, α) as G₁ / (G₁ + G₂) of two Gamma(α, 1) draws (Marsaglia–Tsang, with the α &lt; 1 boost).</summary>
internal static class BetaSampler
{
    /// <summary>One Beta(<paramref name="alpha"/>, <paramref name="alpha"/>) sample in [0, 1].</summary>
    public static double Sample(Random random, double alpha)
    {
        double a = Gamma(random, alpha), b = Gamma(random, alpha);
        return a + b > 0 ? a / (a + b) : 0.5;
    }

    /// <summary>One Gamma(<paramref name="shape"/>, 1) sample.</summary>
    public static double Gamma(Random random, double shape)
    {
        if (shape < 1)
            return Gamma(random, shape + 1) * Math.Pow(1 - random.NextDouble(), 1 / shape);
        double d = shape - 1.0 / 3, c = 1 / Math.Sqrt(9 * d);
        while (true)
        {
            double x, v;
            do
            {
                x = Normal(random);
                v = 1 + c * x;
            } while (v <= 0);
            v = v * v * v;
            double u = 1 - random.NextDouble();
            if (u < 1 - 0.0331 * x * x * x * x || Math.Log(u) < 0.5 * x * x + d * (1 - v + Math.Log(v)))
                return d * v;
        }
    }

    private static double Normal(Random random)
    {
        double u1 = 1 - random.NextDouble(), u2 = random.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
