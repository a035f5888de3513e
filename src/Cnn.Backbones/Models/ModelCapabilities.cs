namespace Cnn.Backbones.Models;

/// <summary>
/// The architecture-dependent options a model accepts, declared once per family on its <see cref="ModelDefinition"/> and checked
/// by <see cref="ModelDefinition.Build"/> for every model the registry makes; an option outside them is rejected with one message
/// that names the model and what it supports.
/// </summary>
public sealed record ModelCapabilities
{
    /// <summary>A convolutional network's: <see cref="ModelOptions.GlobalPool"/> <c>"avg"</c> only, fixed block counts.</summary>
    public static ModelCapabilities Cnn { get; } = new();

    /// <summary>
    /// The <see cref="ModelOptions.GlobalPool"/> values the model supports, its default (used for null) first. Default
    /// <c>["avg"]</c>; the Vision Transformer's are <c>["token", "avg"]</c>.
    /// </summary>
    public IReadOnlyList<string> GlobalPools { get; init; } = ["avg"];

    /// <summary>Whether <see cref="ModelOptions.BlockCounts"/> may replace the architecture's blocks per stage (the ResNet families).</summary>
    public bool BlockCounts { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> when <paramref name="options"/> sets an option <paramref name="model"/> does not support.</summary>
    /// <param name="model">Model name, for the message.</param>
    /// <param name="options">Creation options.</param>
    public void Check(string model, ModelOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.GlobalPool is { } pool && !GlobalPools.Contains(pool, StringComparer.Ordinal))
            throw Unsupported(model, nameof(ModelOptions.GlobalPool), $"\"{pool}\"");
        if (options.BlockCounts is { } counts && !BlockCounts)
            throw Unsupported(model, nameof(ModelOptions.BlockCounts), $"[{string.Join(", ", counts)}]");
    }

    /// <summary>What the model supports, e.g. <c>GlobalPool "avg" (or null); BlockCounts null (fixed)</c>.</summary>
    public string Describe() =>
        $"{nameof(ModelOptions.GlobalPool)} {string.Join(" or ", GlobalPools.Select(p => $"\"{p}\""))} (or null for \"{GlobalPools[0]}\"); " +
        $"{nameof(ModelOptions.BlockCounts)} {(BlockCounts ? "4 counts ≥ 1 (or null for the architecture's own)" : "null (its block counts are fixed)")}";

    private ArgumentException Unsupported(string model, string option, string value) =>
        new($"{model} does not support {option} = {value}. {model} supports: {Describe()}.", option);
}
