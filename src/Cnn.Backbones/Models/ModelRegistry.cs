using System.Collections.Concurrent;
using System.Reflection;
using static TorchSharp.torch;

namespace Cnn.Backbones.Models;

/// <summary>
/// A model family (ResNet, VGG, …): lists its variants for <see cref="ModelRegistry"/>. Implement it once per family file with
/// a public parameterless constructor; the registry finds every implementation in this assembly.
/// </summary>
public interface IModelFamily
{
    /// <summary>The family's variants, in listing order.</summary>
    IEnumerable<ModelDefinition> Models { get; }

    /// <summary>What <c>Auto</c> precision and memory format turn on for the family's models (<see cref="Models.AutoCompute"/>); none by default.</summary>
    AutoCompute AutoCompute => AutoCompute.None;
}

/// <summary>One registered model variant.</summary>
/// <param name="Name">Model name, exactly as torchvision/timm spell it (e.g. <c>resnet50</c>).</param>
/// <param name="Family">Family name (e.g. <c>resnet</c>).</param>
/// <param name="DefaultConfig">Configuration of its reference pretrained weights.</param>
/// <param name="Factory">Builds the model from validated options on a device (null: default device).</param>
/// <param name="DefaultOptions">
/// Options used when none are given (e.g. LeNet-5's 10 classes and 1 input channel); null for <c>new ModelOptions()</c>
/// (1000 classes, 3 channels). <see cref="ModelInfo.ParameterCount"/> counts the model built with them.
/// </param>
public sealed record ModelDefinition(string Name, string Family, PretrainedConfig DefaultConfig, Func<ModelOptions, Device?, Backbone> Factory, ModelOptions? DefaultOptions = null)
{
    /// <summary>
    /// The architecture-dependent options the model accepts (<see cref="ModelOptions.GlobalPool"/>, <see cref="ModelOptions.BlockCounts"/>);
    /// <see cref="Build"/> rejects the others. Default: a CNN's (<see cref="ModelCapabilities.Cnn"/>).
    /// </summary>
    public ModelCapabilities Capabilities { get; init; } = ModelCapabilities.Cnn;

    /// <summary>
    /// The published pretrained weights of this architecture (torchvision's <c>WeightsEnum</c> members), declared by the family;
    /// the entry marked as default answers to <see cref="Weights.Catalog.WeightsEntry.DefaultAlias"/>. Empty where none exist.
    /// </summary>
    public IReadOnlyList<Weights.Catalog.WeightsEntry> Weights { get; init; } = [];

    /// <summary>Name of the entry of <see cref="Weights"/> that <c>DEFAULT</c> points to (torchvision's choice); null where there are none.</summary>
    public string? DefaultWeights { get; init; }

    /// <summary>The names timm gives this architecture (e.g. <c>mobilenetv3_large_100</c> for <c>mobilenet_v3_large</c>); the registry accepts them as aliases.</summary>
    public IReadOnlyList<string> TimmNames { get; init; } = [];

    /// <summary>What <c>Auto</c> precision and memory format turn on for this model, as its family declares (<see cref="IModelFamily.AutoCompute"/>).</summary>
    public AutoCompute AutoCompute { get; init; } = AutoCompute.None;

    /// <summary>How timm's state-dict keys map onto this model's; null where timm's layout is not supported (or is the same as ours).</summary>
    public Weights.Catalog.ICheckpointKeyMap? TimmKeyMap { get; init; }

    /// <summary>
    /// The entry of <see cref="Weights"/> called <paramref name="name"/>: <c>DEFAULT</c> (<see cref="DefaultWeights"/>), an entry name
    /// (<c>IMAGENET1K_V2</c>, case-insensitive), or <c>&lt;model&gt;.&lt;tag&gt;</c> with timm's tag for the same file (<c>resnet50.tv2_in1k</c>)
    /// or an entry name.
    /// </summary>
    /// <param name="name">The weights' name.</param>
    /// <exception cref="ArgumentException">No such weights; the message lists the available names.</exception>
    public Weights.Catalog.WeightsEntry FindWeights(string name) => Cnn.Backbones.Weights.Catalog.WeightsCatalog.Find(this, name);

    /// <summary>
    /// Validates <paramref name="options"/> (architecture-independent values and this model's <see cref="Capabilities"/>), then
    /// builds the model with <see cref="Factory"/>. Every model the registry makes is built here.
    /// </summary>
    /// <param name="options">Creation options.</param>
    /// <param name="device">Device for the parameters; null for the default. The meta device builds without memory.</param>
    /// <exception cref="ArgumentException">Invalid options, or an option this model does not support.</exception>
    public Backbone Build(ModelOptions options, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Capabilities.Check(Name, options);
        return Factory(options, device);
    }
}

/// <summary>What <see cref="ModelRegistry.List"/> reports about a model.</summary>
/// <param name="Name">Model name.</param>
/// <param name="Family">Family name.</param>
/// <param name="DefaultConfig">Configuration of its reference pretrained weights.</param>
/// <param name="ParameterCount">Parameters of the default model (its <see cref="ModelDefinition.DefaultOptions"/>; usually 1000 classes, 3 input channels), counted from a built model.</param>
public sealed record ModelInfo(string Name, string Family, PretrainedConfig DefaultConfig, long ParameterCount);

/// <summary>Creates models by name (<c>ModelRegistry.Create("resnet50", new ModelOptions { NumClasses = 10 })</c>) and lists them.</summary>
public static class ModelRegistry
{
    private static readonly Lazy<Registry> Registered = new(Discover);
    private static readonly ConcurrentDictionary<string, long> ParameterCounts = new(StringComparer.Ordinal);

    private static IReadOnlyDictionary<string, ModelDefinition> Definitions => Registered.Value.Definitions;

    /// <summary>
    /// Whether a model with this name is registered (names are case-insensitive), under its own name or a timm name of the same
    /// architecture (<see cref="ModelDefinition.TimmNames"/>, e.g. <c>mobilenetv3_large_100</c>).
    /// </summary>
    /// <param name="name">Model name.</param>
    public static bool Exists(string name) => name is not null && (Definitions.ContainsKey(name) || Registered.Value.Aliases.ContainsKey(name));

    /// <summary>Every registration, in discovery order (no models are built).</summary>
    internal static IEnumerable<ModelDefinition> AllDefinitions => Definitions.Values;

    /// <summary>Every registered model with its family, default pretrained configuration and parameter count.</summary>
    /// <param name="family">Only this family (e.g. <c>"resnet"</c>), or null for all.</param>
    public static IReadOnlyList<ModelInfo> List(string? family = null) =>
        Definitions.Values
            .Where(d => family is null || string.Equals(d.Family, family, StringComparison.OrdinalIgnoreCase))
            .Select(Describe)
            .ToArray();

    /// <summary>Describes one model.</summary>
    /// <param name="name">Model name, or a timm name of the same architecture (<see cref="ModelDefinition.TimmNames"/>).</param>
    /// <exception cref="ArgumentException">No model has this name; the message lists close matches.</exception>
    public static ModelInfo Get(string name) => Describe(Find(name));

    /// <summary>The registration of one model: its factory, default options and <see cref="ModelDefinition.Capabilities"/>.</summary>
    /// <param name="name">Model name, or a timm name of the same architecture (<see cref="ModelDefinition.TimmNames"/>).</param>
    /// <exception cref="ArgumentException">
    /// No model has this name (the message lists close matches), or it is a timm variant that is not the same network as any
    /// registered model (the message says why).
    /// </exception>
    public static ModelDefinition GetDefinition(string name) => Find(name);

    /// <summary>
    /// Builds a model. With <see cref="ModelOptions.Weights"/> (a name such as <c>"DEFAULT"</c> or <c>"IMAGENET1K_V2"</c>, an
    /// <c>hf-hub:</c> name or a path; see <see cref="Weights.PretrainedWeights"/>) or <see cref="ModelOptions.WeightsPath"/> set, loads
    /// the weights as timm loads pretrained weights: the body
    /// strictly, the classifier only when its class count matches, the first convolution adapted to the input channels.
    /// </summary>
    /// <param name="name">Model name, e.g. <c>resnet50</c> (see <see cref="List"/>), or a timm name of the same architecture (e.g. <c>mobilenetv3_large_100</c>).</param>
    /// <param name="options">Options; null for the model's defaults (usually 1000 classes, 3 channels; LeNet-5: 10 classes, 1 channel).</param>
    /// <exception cref="ArgumentException">Unknown name (the message lists close matches) or invalid options.</exception>
    public static Backbone Create(string name, ModelOptions? options = null)
    {
        var definition = Find(name);
        Native.TorchRuntime.EnsureLoaded();
        options ??= definition.DefaultOptions ?? new ModelOptions();
        options.Validate();
        // Named weights are resolved (downloaded once, hash-checked, cached) before the model is built, so a bad name costs nothing.
        string? path = options.Weights is { } weights ? Weights.PretrainedWeights.Resolve(definition.Name, weights).Path : options.WeightsPath;
        var model = definition.Build(options);
        if (path is not null)
        {
            try
            {
                model.LoadPretrained(path);
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }
        return model;
    }

    private static ModelInfo Describe(ModelDefinition d) =>
        new(d.Name, d.Family, d.DefaultConfig, ParameterCounts.GetOrAdd(d.Name, _ => CountParameters(d)));

    private static long CountParameters(ModelDefinition d)
    {
        // The meta device allocates no storage, so even the largest variants cost only their module objects.
        Native.TorchRuntime.EnsureLoaded();
        using var model = d.Build(d.DefaultOptions ?? new ModelOptions(), META);
        return model.parameters().Sum(p => p.numel());
    }

    private static ModelDefinition Find(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (Definitions.TryGetValue(name, out var definition)) return definition;
        if (Registered.Value.Aliases.TryGetValue(name, out definition)) return definition;
        if (Registered.Value.Refusals.FirstOrDefault(r => r.Matches(name)) is { } refusal)
            throw new ArgumentException($"timm's '{name}' is not the same network as any registered model: {refusal.Reason}", nameof(name));
        var close = CloseMatches(name);
        throw new ArgumentException(
            $"Unknown model '{name}'. " +
            (close.Count > 0 ? $"Did you mean: {string.Join(", ", close)}? " : "") +
            $"Registered models: {string.Join(", ", Definitions.Keys)}.", nameof(name));
    }

    /// <summary>Registered names within a small edit distance of <paramref name="name"/>, or containing it, closest first.</summary>
    public static IReadOnlyList<string> CloseMatches(string name, int max = 5)
    {
        string query = name.Trim().ToLowerInvariant();
        return Definitions.Keys
            .Select(k => (Name: k, Distance: EditDistance(query, k.ToLowerInvariant())))
            .Where(x => x.Distance <= Math.Max(2, query.Length / 3) || (query.Length >= 3 && x.Name.Contains(query, StringComparison.OrdinalIgnoreCase)))
            .OrderBy(x => x.Distance).ThenBy(x => x.Name, StringComparer.Ordinal)
            .Take(max)
            .Select(x => x.Name)
            .ToArray();
    }

    private static int EditDistance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) previous[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }

    private sealed record Registry(
        IReadOnlyDictionary<string, ModelDefinition> Definitions, IReadOnlyDictionary<string, ModelDefinition> Aliases, IReadOnlyList<Weights.Timm.TimmRefusal> Refusals);

    private static Registry Discover()
    {
        var definitions = new Dictionary<string, ModelDefinition>(StringComparer.OrdinalIgnoreCase);
        var refusals = new List<Weights.Timm.TimmRefusal>();
        var families = typeof(ModelRegistry).Assembly.GetTypes()
            .Where(t => typeof(IModelFamily).IsAssignableFrom(t) && t is { IsClass: true, IsAbstract: false } && t.GetConstructor(Type.EmptyTypes) is not null)
            .OrderBy(t => t.FullName, StringComparer.Ordinal);
        foreach (var type in families)
        {
            var family = (IModelFamily)Activator.CreateInstance(type)!;
            var timm = family as Weights.Timm.ITimmFamily;
            if (timm is not null) refusals.AddRange(timm.TimmRefusals);
            foreach (var listed in family.Models)
            {
                var definition = (timm?.WithTimm(listed) ?? listed) with { AutoCompute = family.AutoCompute };
                if (!definitions.TryAdd(definition.Name, definition))
                    throw new InvalidOperationException($"Model '{definition.Name}' is registered twice ({definitions[definition.Name].Family} and {definition.Family}).");
            }
        }
        var aliases = new Dictionary<string, ModelDefinition>(StringComparer.OrdinalIgnoreCase);
        foreach (var definition in definitions.Values)
        {
            foreach (var alias in definition.TimmNames)
            {
                if (definitions.TryGetValue(alias, out var named) && named != definition)
                    throw new InvalidOperationException($"timm name '{alias}' of {definition.Name} is another registered model's name.");
                if (string.Equals(alias, definition.Name, StringComparison.OrdinalIgnoreCase)) continue;
                if (!aliases.TryAdd(alias, definition))
                    throw new InvalidOperationException($"timm name '{alias}' is declared by both {aliases[alias].Name} and {definition.Name}.");
            }
        }
        return new Registry(definitions, aliases, refusals);
    }
}
