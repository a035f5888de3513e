using System.Globalization;
using System.Text.Json;
using Cnn.Backbones.Native;
using Cnn.MLNet.Distillation;
using Cnn.Tests.Shared;
using static TorchSharp.torch;

namespace Cnn.MLNet.Tests.Distillation;

/// <summary>The distillation loss and its gradient against PyTorch on the same random logits, computed by /usr/bin/python3 at test time.</summary>
[TestClass]
public sealed class DistillationLossTests
{
    // One case per line of the reference's output: cross_entropy over the labelled rows (y >= 0; none: term left out), KLDivLoss
    // batchmean over all rows; pseudo-label cases first replace y < 0 by the teacher's argmax.
    private const string Script = """
        import json, sys
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
        cases = json.load(open(sys.argv[1]))
        out = []
        for c in cases:
            s = torch.tensor(c["student"], dtype=torch.float32).reshape(c["n"], c["classes"]).requires_grad_(True)
            t = torch.tensor(c["teacher"], dtype=torch.float32).reshape(c["n"], c["classes"])
            y = torch.tensor(c["labels"], dtype=torch.int64)
            T, alpha = c["temperature"], c["alpha"]
            if c["pseudo"]:
                y = torch.where(y >= 0, y, t.argmax(1))
            m = y >= 0
            soft = nn.KLDivLoss(reduction="batchmean")(F.log_softmax(s / T, 1), F.softmax(t / T, 1))
            loss = (1 - alpha) * T * T * soft
            hard = None
            if m.any():
                hard = F.cross_entropy(s[m], y[m])
                loss = alpha * hard + loss
            loss.backward()
            out.append({"loss": loss.item(), "soft": soft.item(), "hard": None if hard is None else hard.item(),
                        "labelled": int(m.sum()), "grad": s.grad.reshape(-1).tolist()})
        print(json.dumps(out))
        """;

    private sealed record Case(int N, int Classes, float[] Student, float[] Teacher, long[] Labels, double Temperature, double Alpha, bool Pseudo);

    private sealed record Reference(double Loss, double Soft, double? Hard, long Labelled, float[] Grad);

    private static Case RandomCase(int seed, int n, int classes, double temperature, double alpha, double unlabelledFraction, bool pseudo, float scale = 3f)
    {
        var random = new Random(seed);
        float Normal() => (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        var student = Enumerable.Range(0, n * classes).Select(_ => Normal() * scale).ToArray();
        var teacher = Enumerable.Range(0, n * classes).Select(_ => Normal() * scale).ToArray();
        var labels = Enumerable.Range(0, n).Select(_ => random.NextDouble() < unlabelledFraction ? -1L : random.Next(classes)).ToArray();
        return new Case(n, classes, student, teacher, labels, temperature, alpha, pseudo);
    }

    [TestMethod]
    public void LossAndGradientMatchPyTorch()
    {
        TorchRuntime.EnsureLoaded();
        var cases = new[]
        {
            RandomCase(1, n: 8, classes: 10, temperature: 4, alpha: 0.3, unlabelledFraction: 0, pseudo: false),   // all labelled
            RandomCase(2, n: 16, classes: 5, temperature: 2, alpha: 0.5, unlabelledFraction: 0.5, pseudo: false), // labelled + unlabelled
            RandomCase(3, n: 6, classes: 7, temperature: 1, alpha: 0.7, unlabelledFraction: 1, pseudo: false),    // unlabelled only: soft term only
            RandomCase(4, n: 12, classes: 4, temperature: 3, alpha: 0.4, unlabelledFraction: 0.6, pseudo: true),  // pseudo-labels for the unlabelled
            RandomCase(5, n: 10, classes: 10, temperature: 1, alpha: 0.2, unlabelledFraction: 0.3, pseudo: false, scale: 30f), // saturated softmax
        };
        Assert.IsTrue(cases[1].Labels.Count(l => l < 0) is > 0 and < 16, "case 2 must mix labelled and unlabelled rows");
        Assert.IsTrue(cases[3].Labels.Any(l => l < 0), "case 4 must have rows that get pseudo-labels");

        using var folder = new TempDirectory();
        string input = folder.File("cases.json");
        File.WriteAllText(input, JsonSerializer.Serialize(cases.Select(c => new
        {
            n = c.N, classes = c.Classes, student = c.Student, teacher = c.Teacher, labels = c.Labels,
            temperature = c.Temperature, alpha = c.Alpha, pseudo = c.Pseudo,
        })));
        var references = JsonSerializer.Deserialize<Reference[]>(ReferencePython.Run(Script, input), new JsonSerializerOptions { PropertyNameCaseInsensitive = true })!;
        Assert.AreEqual(cases.Length, references.Length);

        for (int i = 0; i < cases.Length; i++)
        {
            var c = cases[i];
            var expected = references[i];
            using var scope = NewDisposeScope();
            var student = tensor(c.Student, new long[] { c.N, c.Classes }).requires_grad_(true);
            var teacher = tensor(c.Teacher, new long[] { c.N, c.Classes });
            var labels = tensor(c.Labels, ScalarType.Int64);
            var terms = DistillationLoss.Compute(student, teacher, labels, c.Temperature, c.Alpha, c.Pseudo);
            terms.Total.backward();
            string name = $"case {i + 1}";
            Assert.AreEqual(expected.Loss, terms.Total.item<float>(), 1e-5 * Math.Max(1, Math.Abs(expected.Loss)), $"{name}: total loss");
            Assert.AreEqual(expected.Soft, terms.Soft.item<float>(), 1e-5 * Math.Max(1, Math.Abs(expected.Soft)), $"{name}: KL batchmean");
            Assert.AreEqual(expected.Labelled, terms.Labelled, $"{name}: labelled rows");
            Assert.AreEqual(expected.Hard is null, terms.Hard is null, $"{name}: the CE term is present exactly when a row is labelled");
            if (expected.Hard is { } hard)
                Assert.AreEqual(hard, terms.Hard!.item<float>(), 1e-5 * Math.Max(1, Math.Abs(hard)), $"{name}: cross-entropy over labelled rows");
            var gradient = student.grad!.data<float>().ToArray();
            Assert.AreEqual(expected.Grad.Length, gradient.Length);
            for (int k = 0; k < gradient.Length; k++)
                Assert.AreEqual(expected.Grad[k], gradient[k], 1e-6f + 1e-4f * Math.Abs(expected.Grad[k]), $"{name}: d loss / d s[{k}]");
        }
        // The rule is visible in the numbers: unlabelled-only is the soft term alone, T² (1 − alpha) KL.
        Assert.AreEqual(references[2].Loss, (1 - cases[2].Alpha) * cases[2].Temperature * cases[2].Temperature * references[2].Soft, 1e-5,
            string.Create(CultureInfo.InvariantCulture, $"loss {references[2].Loss}"));
        // Pseudo-labels make every row count in the cross-entropy.
        Assert.AreEqual((long)cases[3].N, references[3].Labelled);
    }

    [TestMethod]
    public void MismatchedShapesAreRejected()
    {
        TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        var error = Assert.ThrowsExactly<ArgumentException>(() =>
            DistillationLoss.Compute(zeros(4, 10), zeros(4, 5), zeros(4, ScalarType.Int64), 2, 0.5));
        StringAssert.Contains(error.Message, "must both be [N, classes]");
        Assert.ThrowsExactly<ArgumentException>(() => DistillationLoss.Compute(zeros(4, 3), zeros(4, 3), zeros(3, ScalarType.Int64), 2, 0.5));
    }
}
