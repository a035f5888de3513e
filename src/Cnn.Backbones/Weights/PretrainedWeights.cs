using Cnn.Backbones.Models;
using Cnn.Backbones.Weights.Catalog;
using Cnn.Backbones.Weights.Download;
using Cnn.Backbones.Weights.Timm;

namespace Cnn.Backbones.Weights;

/// <summary>
/// Weights that <see cref="PretrainedWeights.Resolve"/> found: the local file and what the weights were made for.
/// </summary>
/// <param name="Path">The local weights file (in the cache for names, as given for paths).</param>
/// <param name="Config">The preprocessing and head the weights expect, or null for a plain file (the model's own configuration applies).</param>
/// <param name="Categories">Class names in the order of the weights' classifier, or null where unknown.</param>
/// <param name="Description">What was asked for, for messages (e.g. <c>resnet50 IMAGENET1K_V2</c>, <c>hf-hub:timm/resnet50.a1_in1k</c>).</param>
/// <param name="License">The weights' licence where it restricts use (SWAG's non-commercial terms), else null.</param>
public sealed record ResolvedWeights(string Path, PretrainedConfig? Config, IReadOnlyList<string>? Categories, string Description, string? License = null);

/// <summary>
/// Turns what a user asks for (<see cref="ModelOptions.Weights"/>, <c>cnn --weights</c>) into a local weights file: a file path as
/// it is; <c>DEFAULT</c>, a catalog entry (<c>IMAGENET1K_V2</c>) or timm's name for it (<c>resnet50.tv2_in1k</c>) downloaded from
/// torchvision's server into <c>$TORCH_HOME/hub/checkpoints</c>; <c>hf-hub:org/name[@revision]</c> from the Hugging Face hub into its
/// cache, with the repository's <c>config.json</c> giving the preprocessing (for the CLIP image towers, <see cref="ClipImageFamily"/>,
/// the repository's OpenCLIP checkpoint, <c>open_clip_model.safetensors</c> or <c>open_clip_pytorch_model.bin</c>). Every download is hash-checked; see
/// <see cref="WeightStore"/> for the cache, offline use and mirrors.
/// </summary>
public static class PretrainedWeights
{
    /// <summary>
    /// The local file and configuration of <paramref name="weights"/> for <paramref name="model"/>, downloading it once if needed;
    /// later calls find it in the cache (its hash checked once, then remembered by size and modification time).
    /// </summary>
    /// <param name="model">Registered model name (or a timm alias).</param>
    /// <param name="weights"><c>DEFAULT</c>, an entry name, <c>&lt;arch&gt;.&lt;timm tag&gt;</c>, <c>hf-hub:org/name[@rev]</c>, or a file path.</param>
    /// <param name="store">Where to cache and download; null for the default store (environment: <c>CNN_HOME</c>, <c>TORCH_HOME</c>, <c>HF_HOME</c>, <c>CNN_OFFLINE</c>, …).</param>
    /// <param name="cancellation">Stops a download (a <c>.partial</c> file is kept for resuming).</param>
    /// <exception cref="ArgumentException">Unknown model, or no such weights (the message lists what exists).</exception>
    /// <exception cref="FileNotFoundException">A path that does not exist.</exception>
    /// <exception cref="WeightDownloadException">The download failed, was refused, or is impossible offline (the message says what to do).</exception>
    public static ResolvedWeights Resolve(string model, string weights, WeightStore? store = null, CancellationToken cancellation = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(weights);
        var definition = ModelRegistry.GetDefinition(model);
        string name = weights.Trim();
        if (File.Exists(name)) return new ResolvedWeights(name, null, null, $"'{name}'");
        if (LooksLikePath(name))
            throw new FileNotFoundException(
                $"Weights file '{name}' does not exist. Give the path of a .pth or .safetensors file, or a weights name " +
                $"({Names(definition)}).", name);
        if (store is not null) return ResolveName(definition, name, store, cancellation);
        using var environmentStore = new WeightStore();
        return ResolveName(definition, name, environmentStore, cancellation);
    }

    /// <summary>
    /// The local file of an OpenCLIP checkpoint: a path as it is, or an <c>hf-hub:</c> name (e.g.
    /// <c>hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K</c>) downloaded once into the hub's cache (<c>open_clip_model.safetensors</c>,
    /// else <c>open_clip_pytorch_model.bin</c>), hash-checked as every download is.
    /// </summary>
    /// <param name="weights">A checkpoint path or an <c>hf-hub:</c> name.</param>
    /// <param name="store">Where to cache and download; null for the environment's.</param>
    /// <param name="cancellation">Stops a download.</param>
    /// <exception cref="FileNotFoundException">A path that does not exist.</exception>
    /// <exception cref="WeightDownloadException">The download failed, was refused, or is impossible offline.</exception>
    public static string ResolveOpenClip(string weights, WeightStore? store = null, CancellationToken cancellation = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(weights);
        if (!HubModelId.IsHubName(weights))
            return File.Exists(weights) ? weights : throw new FileNotFoundException(
                $"CLIP weight file '{weights}' does not exist. Pass an OpenCLIP checkpoint (open_clip_pytorch_model.bin, " +
                "open_clip_model.safetensors or a .pt state dict) or a hub name such as hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K.", weights);
        var id = HubModelId.Parse(weights);
        if (store is not null) return Wait(store.GetHubFilesAsync(id, HubFileSet.OpenClip, cancellation)).WeightsPath;
        using var environmentStore = new WeightStore();
        return Wait(environmentStore.GetHubFilesAsync(id, HubFileSet.OpenClip, cancellation)).WeightsPath;
    }

    /// <summary>Whether <paramref name="weights"/> names weights to download rather than a file (it is not an existing path).</summary>
    /// <param name="weights">What the user gave.</param>
    public static bool IsName(string weights) => !File.Exists(weights) && !LooksLikePath(weights);

    private static ResolvedWeights ResolveName(ModelDefinition definition, string name, WeightStore store, CancellationToken cancellation)
    {
        if (HubModelId.IsHubName(name)) return ResolveHub(definition, HubModelId.Parse(name), store, cancellation);
        var entry = definition.FindWeights(name);
        string path = Wait(store.GetFileAsync(entry, cancellation));
        return new ResolvedWeights(path, entry.Config, entry.Metadata.Categories.Count > 0 ? entry.Metadata.Categories : null,
            $"{definition.Name} {entry.Name}", entry.Metadata.License);
    }

    private static ResolvedWeights ResolveHub(ModelDefinition definition, HubModelId id, WeightStore store, CancellationToken cancellation)
    {
        if (definition.Family == ClipImageFamily.Family)
        {
            // OpenCLIP's files; the image tower is checked against the model when the checkpoint loads, and the model's own
            // (CLIP) preprocessing applies.
            var clip = Wait(store.GetHubFilesAsync(id, HubFileSet.OpenClip, cancellation));
            return new ResolvedWeights(clip.WeightsPath, null, null, id.ToString());
        }
        var snapshot = Wait(store.GetHubFilesAsync(id, HubFileSet.Timm, cancellation));
        PretrainedConfig? config = null;
        IReadOnlyList<string>? labels = null;
        if (snapshot.ConfigPath is { } configPath)
        {
            var hub = TimmPretrainedConfig.Load(configPath);
            if (!string.Equals(hub.Definition.Name, definition.Name, StringComparison.OrdinalIgnoreCase))
                throw new ArgumentException(
                    $"{id} holds weights for timm's '{hub.Architecture}' (our '{hub.Definition.Name}'), not '{definition.Name}' ({configPath}). " +
                    $"Use model '{hub.Definition.Name}', or weights made for {definition.Name}.");
            config = hub.PretrainedConfig;
            labels = hub.LabelNames;
        }
        return new ResolvedWeights(snapshot.WeightsPath, config, labels, id.ToString());
    }

    private static T Wait<T>(Task<T> task) => task.GetAwaiter().GetResult();

    private static bool LooksLikePath(string name) =>
        !HubModelId.IsHubName(name) && (name.IndexOfAny(['/', '\\']) >= 0 || Path.GetExtension(name).ToLowerInvariant() is ".pth" or ".pt" or ".bin" or ".safetensors" or ".onnx" or ".ckpt");

    private static string Names(ModelDefinition definition) =>
        definition.Weights.Count == 0
            ? $"{definition.Name} has no catalog weights; an hf-hub: name also works"
            : $"DEFAULT, {string.Join(", ", definition.Weights.Select(w => w.Name))}, or an hf-hub: name";
}
