using Cnn.Backbones.Models;
using Cnn.Backbones.Native;

namespace Cnn.Tests.Shared;

/// <summary>
/// The one place that picks what the per-family tests run: the smallest registered variant (fewest parameters) of every family
/// in the registry, so a new family is trained, exported, imported and listed by those tests without a test edit.
/// </summary>
internal static class FamilyCases
{
    private static readonly Lazy<IReadOnlyList<ModelDefinition>> SmallestValue = new(() =>
    {
        TorchRuntime.EnsureLoaded();
        return ModelRegistry.List()
            .GroupBy(m => m.Family, StringComparer.OrdinalIgnoreCase)
            .Select(g => ModelRegistry.GetDefinition(g.OrderBy(m => m.ParameterCount).ThenBy(m => m.Name, StringComparer.Ordinal).First().Name))
            .ToArray();
    });

    /// <summary>The smallest variant of every registered family, in registry order.</summary>
    public static IReadOnlyList<ModelDefinition> Smallest => SmallestValue.Value;

    /// <summary>DynamicData rows (the model name) of <see cref="Smallest"/>.</summary>
    public static IEnumerable<object[]> SmallestRows => Smallest.Select(d => new object[] { d.Name });

    /// <summary>
    /// The smallest square input side, at least <paramref name="atLeast"/>, that <paramref name="name"/> accepts (its
    /// <c>MinInputSize</c>, read off a model built on the meta device with its default options).
    /// </summary>
    public static int InputSize(string name, int atLeast = 32)
    {
        TorchRuntime.EnsureLoaded();
        var definition = ModelRegistry.GetDefinition(name);
        using var model = definition.Build(definition.DefaultOptions ?? new ModelOptions(), TorchSharp.torch.META);
        return Math.Max(atLeast, model.MinInputSize);
    }

    /// <summary>The input channels of <paramref name="name"/>'s default options (1 for LeNet-5, else 3).</summary>
    public static int InChannels(string name) => (ModelRegistry.GetDefinition(name).DefaultOptions ?? new ModelOptions()).InChannels;
}
