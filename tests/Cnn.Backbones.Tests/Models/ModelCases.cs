using Cnn.Backbones.Models;
using Cnn.Backbones.Native;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// The data of the registry-driven model tests: every model <see cref="ModelRegistry.List"/> reports, plus the option variants
/// its <see cref="ModelQuirks"/> name. A new family is found here without any test edit.
/// </summary>
internal static class ModelCases
{
    private static readonly Lazy<IReadOnlyList<ModelSpec>> NamesValue = new(() =>
    {
        TorchRuntime.EnsureLoaded();
        return ModelRegistry.List().Select(m => new ModelSpec(m.Name)).ToArray();
    });

    /// <summary>Every registered model with its default options.</summary>
    public static IReadOnlyList<ModelSpec> Names => NamesValue.Value;

    /// <summary>Every registered model and every variant spec of the quirks table.</summary>
    public static IReadOnlyList<ModelSpec> Specs =>
        Names.SelectMany(n => n.Quirks.Variants.Select(v => new ModelSpec($"{n.Spec}+{v}")).Prepend(n)).ToArray();

    /// <summary>Every parity case: each spec at its parity size, and plain models at their extra sizes too (not those whose parity a sibling covers).</summary>
    public static IReadOnlyList<ParityCase> Parity =>
        Specs.Where(s => s.Quirks.ParityBySibling is null).SelectMany(s => (s.IsPlain ? s.Quirks.ExtraParitySizes : [])
                .Prepend(s.Quirks.ParitySize ?? s.Quirks.TestSize)
                .Select(size => new ParityCase(s, size, s.Quirks.ParityBatch)))
            .ToArray();

    /// <summary>A parity case by id (<c>spec@size</c>).</summary>
    public static ParityCase ParityCase(string id) => Parity.Single(c => c.Id == id);

    /// <summary>DynamicData rows of <see cref="Names"/>.</summary>
    public static IEnumerable<object[]> NameRows => Names.Select(n => new object[] { n.Spec });

    /// <summary>DynamicData rows of the models the forward-pass contract tests build (<see cref="ModelQuirksTable.ForwardContractMaxParameters"/>).</summary>
    public static IEnumerable<object[]> ForwardContractRows =>
        Names.Where(n => ModelRegistry.Get(n.Name).ParameterCount <= ModelQuirksTable.ForwardContractMaxParameters).Select(n => new object[] { n.Spec });

    /// <summary>DynamicData rows of <see cref="Specs"/>.</summary>
    public static IEnumerable<object[]> SpecRows => Specs.Select(s => new object[] { s.Spec });

    /// <summary>DynamicData rows of the models that have torchvision IMAGENET1K_V1 weights (the others say why not in their quirks).</summary>
    public static IEnumerable<object[]> WithTorchvisionWeightsRows =>
        Names.Where(n => n.Quirks.NoTorchvisionWeights is null).Select(n => new object[] { n.Spec });

    /// <summary>DynamicData rows of <see cref="Parity"/> by id.</summary>
    public static IEnumerable<object[]> ParityRows => Parity.Select(c => new object[] { c.Id });

    /// <summary>DynamicData rows of the parity cases that also load into a model of another image size (ViT).</summary>
    public static IEnumerable<object[]> ResampleRows =>
        Parity.Where(c => c.Spec.IsPlain && c.Spec.Quirks.ResampleSize is not null && c.Size == (c.Spec.Quirks.ParitySize ?? c.Spec.Quirks.TestSize))
            .Select(c => new object[] { c.Id });
}

/// <summary>A model spec at an input size, compared with its reference in eval mode.</summary>
/// <param name="Spec">The model spec.</param>
/// <param name="Size">Input side.</param>
/// <param name="Batch">Batch size.</param>
internal sealed record ParityCase(ModelSpec Spec, int Size, int Batch)
{
    /// <summary><c>spec@size</c>.</summary>
    public string Id => Spec.At(Size);

    /// <summary>Parameters of the registered model (what its fixture costs in disk and time).</summary>
    public long Parameters => ModelRegistry.Get(Spec.Name).ParameterCount;

    /// <summary>Prints the id (test names).</summary>
    public override string ToString() => Id;
}
