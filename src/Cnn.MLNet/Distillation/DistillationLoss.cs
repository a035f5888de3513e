using Cnn.Backbones.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Distillation;

/// <summary>
/// The distillation loss (Hinton et al. 2015) on a batch with some rows unlabelled:
/// <c>alpha · CE(s[labelled], y[labelled]) + (1 − alpha) · T² · KLDivLoss(batchmean)(log_softmax(s/T), softmax(t/T))</c>.
/// The cross-entropy is averaged over the labelled rows (label ≥ 0) and left out when there are none; the KL term is summed over
/// classes and divided by the number of rows N (PyTorch's <c>reduction="batchmean"</c>), over all rows. With pseudo-labels,
/// unlabelled rows take the teacher's argmax as their label first, so every row counts in the cross-entropy.
/// </summary>
internal static class DistillationLoss
{
    /// <summary>The loss and its parts (scalar tensors in the current dispose scope).</summary>
    /// <param name="Total">The weighted sum that is minimised.</param>
    /// <param name="Hard">Mean cross-entropy over the labelled rows, or null when none is labelled.</param>
    /// <param name="Soft">KL batchmean over all rows (without T²).</param>
    /// <param name="Labelled">Number of labelled rows.</param>
    public readonly record struct Terms(Tensor Total, Tensor? Hard, Tensor Soft, long Labelled);

    /// <summary>How the hard labels are softened: label smoothing ε, and the λ of a batch mixed with its reverse (1 = not mixed).</summary>
    /// <param name="Smoothing">Label smoothing of the cross-entropy.</param>
    /// <param name="Lambda">Mixup/CutMix λ: row i is λ of image i and 1 − λ of image N − 1 − i.</param>
    public readonly record struct Mixing(double Smoothing, double Lambda)
    {
        /// <summary>Plain labels.</summary>
        public static Mixing None => new(0, 1);
    }

    /// <summary>Computes the loss.</summary>
    /// <param name="student">Student logits [N, C] (with gradient).</param>
    /// <param name="teacher">Teacher logits [N, C] (no gradient needed).</param>
    /// <param name="labels">Class indices [N] (int64); −1 marks an unlabelled row.</param>
    /// <param name="temperature">Softmax temperature T &gt; 0.</param>
    /// <param name="alpha">Weight of the cross-entropy, in [0, 1].</param>
    /// <param name="pseudoLabels">Replace −1 labels by the teacher's argmax.</param>
    /// <param name="mixing">
    /// Label smoothing and mixing of the hard term: for a mixed batch it is <c>λ·CE(s, y) + (1 − λ)·CE(s, flip(y))</c> (the
    /// soft-target cross-entropy against the mixed targets) over the rows whose two labels are known (after pseudo-labelling,
    /// where an unknown label takes the teacher's argmax of the mixed image). Default: plain labels.
    /// </param>
    public static Terms Compute(Tensor student, Tensor teacher, Tensor labels, double temperature, double alpha, bool pseudoLabels = false, Mixing? mixing = null)
    {
        if (student.dim() != 2 || !student.shape.SequenceEqual(teacher.shape))
            throw new ArgumentException($"Student logits [{string.Join(", ", student.shape)}] and teacher logits [{string.Join(", ", teacher.shape)}] must both be [N, classes].");
        long n = student.shape[0];
        if (labels.dim() != 1 || labels.shape[0] != n)
            throw new ArgumentException($"Labels must be [{n}]; got [{string.Join(", ", labels.shape)}].");

        // KL(p_t || p_s) = Σ p_t (log p_t − log p_s); log p_t from log_softmax so that p_t = 0 contributes exactly 0.
        var studentLog = nn.functional.log_softmax(student.DividedBy(temperature), 1);
        var teacherLog = nn.functional.log_softmax(teacher.detach().DividedBy(temperature), 1);
        var soft = (teacherLog.exp() * (teacherLog - studentLog)).sum().DividedBy(n);
        var total = soft.Times((1 - alpha) * temperature * temperature);

        var m = mixing ?? Mixing.None;
        var flipped = labels.flip(0);
        if (pseudoLabels)
        {
            var predicted = teacher.argmax(1);
            labels = torch.where(labels.ge(Scalars.Zero), labels, predicted);
            flipped = torch.where(flipped.ge(Scalars.Zero), flipped, predicted);
        }
        var labelled = m.Lambda < 1 ? labels.ge(Scalars.Zero).logical_and(flipped.ge(Scalars.Zero)) : labels.ge(Scalars.Zero);
        long count = labelled.sum().item<long>();
        Tensor? hard = null;
        if (count > 0)
        {
            var rows = labelled.nonzero().squeeze(1);
            var logits = student.index_select(0, rows);
            hard = nn.functional.cross_entropy(logits, labels.index_select(0, rows), label_smoothing: m.Smoothing);
            if (m.Lambda < 1)
                hard = hard.Times(m.Lambda).Plus(nn.functional.cross_entropy(logits, flipped.index_select(0, rows), label_smoothing: m.Smoothing).Times(1 - m.Lambda));
            total = total.Plus(hard.Times(alpha));
        }
        return new Terms(total, hard, soft, count);
    }
}
