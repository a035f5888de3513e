namespace Cnn.Backbones.Models;

/// <summary>
/// The architecture-dependent options a model accepts, declared once per family on its <see cref="ModelDefinition"/> and checked
/// by <see cref="ModelDefinition.Build"/> for every model the registry makes. As timm raises on a keyword argument a model does not
/// take, an option outside them is rejected (never silently ignored) with one message that names the model, what it supports and
/// the families that take the option.
/// </summary>
public sealed record ModelCapabilities
{
    /// <summary>A convolutional network's: <see cref="ModelOptions.GlobalPool"/> <c>"avg"</c> only, none of the optional options.</summary>
    public static ModelCapabilities Cnn { get; } = new();

    /// <summary>
    /// The <see cref="ModelOptions.GlobalPool"/> values the model supports, its default (used for null) first. Default
    /// <c>["avg"]</c>; a family with another pooling declares its own values.
    /// </summary>
    public IReadOnlyList<string> GlobalPools { get; init; } = ["avg"];

    /// <summary>Whether <see cref="ModelOptions.BlockCounts"/> may replace the architecture's blocks per stage.</summary>
    public bool BlockCounts { get; init; }

    /// <summary>Whether the model has auxiliary classifiers: <see cref="ModelOptions.AuxLogits"/> and <see cref="ModelOptions.AuxLossWeight"/> may be set.</summary>
    public bool AuxLogits { get; init; }

    /// <summary>Whether <see cref="ModelOptions.TransformInput"/> (torchvision's <c>transform_input</c>) may be set.</summary>
    public bool TransformInput { get; init; }

    /// <summary>Whether <see cref="ModelOptions.ZeroInitResidual"/> (torchvision's <c>zero_init_residual</c>) may be true.</summary>
    public bool ZeroInitResidual { get; init; }

    /// <summary>
    /// Throws <see cref="ArgumentException"/> when <paramref name="options"/> sets an option <paramref name="model"/> does not support;
    /// the message names the option, what the model supports, and the registered families that take the option.
    /// </summary>
    /// <param name="model">Model name, for the message.</param>
    /// <param name="options">Creation options.</param>
    public void Check(string model, ModelOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.GlobalPool is { } pool && !GlobalPools.Contains(pool, StringComparer.Ordinal))
            throw Unsupported(model, nameof(ModelOptions.GlobalPool), $"\"{pool}\"", c => c.GlobalPools.Contains(pool, StringComparer.Ordinal));
        if (options.BlockCounts is { } counts && !BlockCounts)
            throw Unsupported(model, nameof(ModelOptions.BlockCounts), $"[{string.Join(", ", counts)}]", c => c.BlockCounts);
        if (options.AuxLogits is { } aux && !AuxLogits)
            throw Unsupported(model, nameof(ModelOptions.AuxLogits), Format(aux), c => c.AuxLogits);
        if (options.AuxLossWeight is { } weight && !AuxLogits)
            throw Unsupported(model, nameof(ModelOptions.AuxLossWeight), weight.ToString(System.Globalization.CultureInfo.InvariantCulture), c => c.AuxLogits);
        if (options.TransformInput is { } transform && !TransformInput)
            throw Unsupported(model, nameof(ModelOptions.TransformInput), Format(transform), c => c.TransformInput);
        if (options.ZeroInitResidual && !ZeroInitResidual)
            throw Unsupported(model, nameof(ModelOptions.ZeroInitResidual), Format(true), c => c.ZeroInitResidual);
    }

    /// <summary>
    /// What the model supports, e.g. <c>GlobalPool "avg" (or null for "avg"); BlockCounts null (its block counts are fixed);
    /// AuxLogits, AuxLossWeight, TransformInput null; ZeroInitResidual false</c>.
    /// </summary>
    public string Describe()
    {
        var parts = new List<string>
        {
            $"{nameof(ModelOptions.GlobalPool)} {string.Join(" or ", GlobalPools.Select(p => $"\"{p}\""))} (or null for \"{GlobalPools[0]}\")",
            $"{nameof(ModelOptions.BlockCounts)} {(BlockCounts ? "4 counts ≥ 1 (or null for the architecture's own)" : "null (its block counts are fixed)")}",
        };
        var fixedOptions = new List<string>();
        if (AuxLogits) parts.Add($"{nameof(ModelOptions.AuxLogits)} and {nameof(ModelOptions.AuxLossWeight)} (auxiliary classifiers)");
        else fixedOptions.AddRange([nameof(ModelOptions.AuxLogits), nameof(ModelOptions.AuxLossWeight)]);
        if (TransformInput) parts.Add(nameof(ModelOptions.TransformInput));
        else fixedOptions.Add(nameof(ModelOptions.TransformInput));
        if (fixedOptions.Count > 0) parts.Add($"{string.Join(", ", fixedOptions)} null");
        parts.Add(ZeroInitResidual ? nameof(ModelOptions.ZeroInitResidual) : $"{nameof(ModelOptions.ZeroInitResidual)} false");
        return string.Join("; ", parts);
    }

    private static string Format(bool value) => value ? "true" : "false";

    private ArgumentException Unsupported(string model, string option, string value, Func<ModelCapabilities, bool> takes)
    {
        var families = ModelRegistry.AllDefinitions.Where(d => takes(d.Capabilities)).Select(d => d.Family).Distinct(StringComparer.OrdinalIgnoreCase).ToArray();
        string who = families.Length > 0
            ? $"{option} = {value} is taken by the {string.Join(", ", families)} {(families.Length == 1 ? "family" : "families")}."
            : $"No registered family takes {option} = {value}.";
        return new($"{model} does not support {option} = {value}. {model} supports: {Describe()}. {who}", option);
    }
}
