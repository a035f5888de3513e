using Cnn.Backbones.Models;

namespace Cnn.Backbones.Weights.Catalog;

/// <summary>One entry of the <see cref="WeightsCatalog"/> with the model it belongs to.</summary>
/// <param name="Model">The architecture's registration.</param>
/// <param name="Entry">The weights.</param>
public sealed record CatalogEntry(ModelDefinition Model, WeightsEntry Entry)
{
    /// <summary>The entry's full name, <c>&lt;model&gt;.&lt;entry&gt;</c> (e.g. <c>resnet50.IMAGENET1K_V2</c>), which <see cref="WeightsCatalog.Find(string)"/> accepts.</summary>
    public string QualifiedName => $"{Model.Name}.{Entry.Name}";
}

/// <summary>
/// The published pretrained weights of every registered architecture, as the families declare them
/// (<see cref="ModelDefinition.Weights"/>), and the lookup by name: <c>DEFAULT</c>, an entry name (<c>IMAGENET1K_V2</c>, any case) or
/// timm's name for the same file (<c>resnet50.tv2_in1k</c>).
/// </summary>
public static class WeightsCatalog
{
    private static readonly Lazy<IReadOnlyList<CatalogEntry>> Entries = new(() =>
        ModelRegistry.AllDefinitions.SelectMany(d => d.Weights.Select(w => new CatalogEntry(d, w))).ToArray());

    /// <summary>Every entry of every registered model, in registry order.</summary>
    public static IReadOnlyList<CatalogEntry> All => Entries.Value;

    /// <summary>The weights of <paramref name="model"/> called <paramref name="name"/>.</summary>
    /// <param name="model">Registered model name (e.g. <c>resnet50</c>).</param>
    /// <param name="name"><c>DEFAULT</c>, an entry name (case-insensitive) or <c>&lt;model&gt;.&lt;timm tag&gt;</c>.</param>
    /// <exception cref="ArgumentException">Unknown model, or no such weights (the message lists the available names).</exception>
    public static WeightsEntry Find(string model, string name) => Find(ModelRegistry.GetDefinition(model), name);

    /// <summary>
    /// The weights a qualified name gives: <c>&lt;model&gt;.&lt;entry&gt;</c> (<c>resnet50.IMAGENET1K_V2</c>, <c>resnet50.DEFAULT</c>) or
    /// timm's <c>&lt;model&gt;.&lt;tag&gt;</c> (<c>resnet50.tv2_in1k</c>).
    /// </summary>
    /// <param name="qualifiedName">The name.</param>
    /// <exception cref="ArgumentException">No model part, an unknown model, or no such weights (the message lists the available names).</exception>
    public static CatalogEntry Find(string qualifiedName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(qualifiedName);
        int dot = qualifiedName.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0 || dot == qualifiedName.Length - 1)
            throw new ArgumentException(
                $"'{qualifiedName}' does not name weights: expected '<model>.<weights>', e.g. 'resnet50.IMAGENET1K_V2', 'resnet50.DEFAULT' or timm's 'resnet50.tv2_in1k'.",
                nameof(qualifiedName));
        var model = ModelRegistry.GetDefinition(qualifiedName[..dot]);
        return new CatalogEntry(model, Find(model, qualifiedName));
    }

    /// <summary>The weights of <paramref name="model"/> called <paramref name="name"/> (see <see cref="ModelDefinition.FindWeights"/>).</summary>
    /// <param name="model">The model's registration.</param>
    /// <param name="name"><c>DEFAULT</c>, an entry name (case-insensitive), or <c>&lt;model&gt;.&lt;entry or timm tag&gt;</c>.</param>
    /// <exception cref="ArgumentException">No such weights; the message lists the available names.</exception>
    public static WeightsEntry Find(ModelDefinition model, string name)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        string key = name.Trim();
        int dot = key.IndexOf('.', StringComparison.Ordinal);
        bool qualified = dot > 0;
        if (qualified)
        {
            string architecture = key[..dot];
            if (!NamesModel(model, architecture))
                throw new ArgumentException(
                    $"Weights '{name}' are for model '{architecture}', not '{model.Name}'. {Available(model)}", nameof(name));
            key = key[(dot + 1)..];
        }
        var entry = Match(model, key, qualified);
        return entry ?? throw new ArgumentException($"Model '{model.Name}' has no weights '{name}'. {Available(model)}", nameof(name));
    }

    private static WeightsEntry? Match(ModelDefinition model, string key, bool qualified)
    {
        if (string.Equals(key, WeightsEntry.DefaultAlias, StringComparison.OrdinalIgnoreCase))
            return model.DefaultWeights is { } d ? model.Weights.FirstOrDefault(w => w.Name == d) : null;
        return model.Weights.FirstOrDefault(w => string.Equals(w.Name, key, StringComparison.OrdinalIgnoreCase))
            ?? (qualified ? model.Weights.FirstOrDefault(w => string.Equals(w.Metadata.TimmTag, key, StringComparison.OrdinalIgnoreCase)) : null);
    }

    private static bool NamesModel(ModelDefinition model, string architecture) =>
        string.Equals(model.Name, architecture, StringComparison.OrdinalIgnoreCase) ||
        model.TimmNames.Any(t => string.Equals(t, architecture, StringComparison.OrdinalIgnoreCase));

    private static string Available(ModelDefinition model)
    {
        if (model.Weights.Count == 0)
            return $"It has no published weights in the catalog; pass a weights file path instead.";
        var names = new List<string> { $"{WeightsEntry.DefaultAlias} (= {model.DefaultWeights})" };
        names.AddRange(model.Weights.Select(w => w.Name));
        names.AddRange(model.Weights.Where(w => w.Metadata.TimmTag is not null).Select(w => $"{model.Name}.{w.Metadata.TimmTag}"));
        return $"Available: {string.Join(", ", names)}.";
    }
}
