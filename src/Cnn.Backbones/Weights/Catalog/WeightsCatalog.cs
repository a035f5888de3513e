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

    private static readonly object RegisterGate = new();
    private static IReadOnlyList<CatalogEntry> _registered = [];

    /// <summary>Every entry of every registered model, in registry order, then the entries added with <see cref="Register"/>.</summary>
    public static IReadOnlyList<CatalogEntry> All => [.. Entries.Value, .. _registered];

    /// <summary>
    /// Adds weights of one's own to the catalog for this process (e.g. a model fine-tuned in-house and published on a company
    /// server), so they are asked for by name like torchvision's: <c>ModelOptions.Weights = "ACME_V1"</c>. The file name of
    /// <see cref="WeightsEntry.Url"/> must carry the SHA-256 prefix of the file (<c>name-&lt;8+ hex&gt;.pth</c>), which every
    /// download is checked against.
    /// </summary>
    /// <param name="model">Registered model name (or a timm alias).</param>
    /// <param name="entry">The entry; its name must not be taken by the model's catalog or an earlier registration, nor be <c>DEFAULT</c>.</param>
    /// <exception cref="ArgumentException">Unknown model, a taken name, or a URL without an absolute http(s) address.</exception>
    /// <exception cref="FormatException">The URL's file name has no SHA-256 prefix.</exception>
    public static CatalogEntry Register(string model, WeightsEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var definition = ModelRegistry.GetDefinition(model);
        if (!Uri.TryCreate(entry.Url, UriKind.Absolute, out var url) || url.Scheme is not ("https" or "http"))
            throw new ArgumentException($"Weights '{entry.Name}': URL '{entry.Url}' is not an absolute http(s) address.", nameof(entry));
        _ = entry.Sha256Prefix; // throws FormatException naming the URL when the file name carries no hash
        if (string.Equals(entry.Name, WeightsEntry.DefaultAlias, StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"'{WeightsEntry.DefaultAlias}' is the alias of {definition.Name}'s default weights; give the entry a name of its own.", nameof(entry));
        lock (RegisterGate)
        {
            if (Match(definition, entry.Name, qualified: false) is not null)
                throw new ArgumentException($"{definition.Name} already has weights named '{entry.Name}'. {Available(definition)}", nameof(entry));
            var added = new CatalogEntry(definition, entry);
            _registered = [.. _registered, added];
            return added;
        }
    }

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
        var weights = WeightsOf(model);
        return weights.FirstOrDefault(w => string.Equals(w.Name, key, StringComparison.OrdinalIgnoreCase))
            ?? (qualified ? weights.FirstOrDefault(w => string.Equals(w.Metadata.TimmTag, key, StringComparison.OrdinalIgnoreCase)) : null);
    }

    /// <summary>The model's declared entries, then those registered for it.</summary>
    private static IEnumerable<WeightsEntry> WeightsOf(ModelDefinition model) =>
        model.Weights.Concat(_registered.Where(r => r.Model.Name == model.Name).Select(r => r.Entry));

    private static bool NamesModel(ModelDefinition model, string architecture) =>
        string.Equals(model.Name, architecture, StringComparison.OrdinalIgnoreCase) ||
        model.TimmNames.Any(t => string.Equals(t, architecture, StringComparison.OrdinalIgnoreCase));

    private static string Available(ModelDefinition model)
    {
        var weights = WeightsOf(model).ToArray();
        if (weights.Length == 0)
            return $"It has no published weights in the catalog; pass a weights file path or an hf-hub: name instead.";
        var names = new List<string>();
        if (model.DefaultWeights is { } d) names.Add($"{WeightsEntry.DefaultAlias} (= {d})");
        names.AddRange(weights.Select(w => w.Name));
        names.AddRange(weights.Where(w => w.Metadata.TimmTag is not null).Select(w => $"{model.Name}.{w.Metadata.TimmTag}"));
        return $"Available: {string.Join(", ", names)}.";
    }
}
