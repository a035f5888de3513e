using Cnn.Backbones.Models;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Models;

/// <summary>Assertions on tensors and state dicts shared by the model tests.</summary>
internal static class TensorAssert
{
    /// <summary>Same shape and bit-for-bit equal values.</summary>
    public static bool Identical(Tensor a, Tensor b)
    {
        if (!a.shape.SequenceEqual(b.shape)) return false;
        using var equal = a.eq(b);
        using var all = equal.all();
        return all.item<bool>();
    }

    /// <summary>Asserts equal shapes and max|actual - expected| ≤ <paramref name="relative"/> · max|expected| (default 1e-4).</summary>
    public static void AssertClose(Tensor expected, Tensor actual, string what, double relative = 1e-4)
    {
        CollectionAssert.AreEqual(expected.shape, actual.shape, $"{what}: shape [{string.Join(", ", actual.shape)}] != reference [{string.Join(", ", expected.shape)}]");
        using var scope = NewDisposeScope();
        double scale = expected.abs().max().item<float>();
        double diff = (actual - expected).abs().max().item<float>();
        Assert.IsTrue(scale > 0, $"{what}: reference is all zeros, the comparison would be meaningless");
        Assert.IsTrue(diff <= relative * scale, $"{what}: max|diff| = {diff:G4} exceeds {relative:G2} · max|ref| = {relative * scale:G4}");
    }

    /// <summary>
    /// Asserts equal shapes and ‖actual − expected‖ ≤ <paramref name="relative"/> · ‖expected‖ (Euclidean norms): for values
    /// where a few elements may legitimately differ by a lot, such as gradients through a ReLU or max-pool whose input rounds to
    /// the other side of zero or of a near tie.
    /// </summary>
    public static void AssertNormClose(Tensor expected, Tensor actual, string what, double relative)
    {
        CollectionAssert.AreEqual(expected.shape, actual.shape, $"{what}: shape [{string.Join(", ", actual.shape)}] != reference [{string.Join(", ", expected.shape)}]");
        using var scope = NewDisposeScope();
        double scale = expected.norm().item<float>();
        double diff = (actual - expected).norm().item<float>();
        Assert.IsTrue(scale > 0, $"{what}: reference is all zeros, the comparison would be meaningless");
        Assert.IsTrue(diff <= relative * scale, $"{what}: ‖diff‖ = {diff:G4} exceeds {relative:G2} · ‖ref‖ = {relative * scale:G4}");
    }

    /// <summary>Asserts that <paramref name="model"/>'s state dict has the reference's keys, in order, with its shapes.</summary>
    public static void AssertSameKeys(IReadOnlyList<(string Key, long[] Shape)> reference, Backbone model, string name)
    {
        var actual = model.state_dict().Select(e => (e.Key, e.Value.shape)).ToArray();
        var firstDifference = Enumerable.Range(0, Math.Min(actual.Length, reference.Count))
            .FirstOrDefault(i => actual[i].Key != reference[i].Key || !actual[i].shape.SequenceEqual(reference[i].Shape), -1);
        if (firstDifference < 0 && actual.Length != reference.Count) firstDifference = Math.Min(actual.Length, reference.Count);
        Assert.AreEqual(-1, firstDifference, firstDifference < 0 ? "" :
            $"{name} entry {firstDifference}: ours " +
            (firstDifference < actual.Length ? $"{actual[firstDifference].Key} [{string.Join(", ", actual[firstDifference].shape)}]" : "(none)") +
            ", reference " +
            (firstDifference < reference.Count ? $"{reference[firstDifference].Key} [{string.Join(", ", reference[firstDifference].Shape)}]" : "(none)") +
            $"; {actual.Length} vs {reference.Count} entries");
    }
}
