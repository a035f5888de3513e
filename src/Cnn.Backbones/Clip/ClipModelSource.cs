using Cnn.Backbones.Weights.Download;

namespace Cnn.Backbones.Clip;

/// <summary>A CLIP model to build: its configuration and preprocessing, and the checkpoint to load into it.</summary>
/// <param name="Config">The model and preprocessing configuration.</param>
/// <param name="WeightsPath">The local checkpoint, or null for random weights.</param>
public sealed record ClipModelSource(OpenClipConfig Config, string? WeightsPath)
{
    /// <summary>
    /// Resolves what a user asks for, as OpenCLIP's <c>create_model</c> does:
    /// <list type="bullet">
    /// <item>a model name (<see cref="ClipModels.Names"/>) builds that configuration with CLIP's preprocessing;</item>
    /// <item>an <c>hf-hub:org/name</c> model downloads the repository's <c>open_clip_config.json</c> and checkpoint once (hub cache)
    /// and builds what the file describes, with its <c>preprocess_cfg</c>; <paramref name="weights"/> may then be left out;</item>
    /// <item>a model name with <c>hf-hub:</c> weights checks the repository's configuration against the named model (refused,
    /// naming both, when they disagree) and takes its preprocessing.</item>
    /// </list>
    /// </summary>
    /// <param name="model">A model name or an <c>hf-hub:</c> name.</param>
    /// <param name="weights">A checkpoint path, an <c>hf-hub:</c> name, or null (the hub model's own weights, else random weights).</param>
    /// <param name="store">Where to cache and download; null for the environment's.</param>
    /// <param name="cancellation">Stops a download.</param>
    /// <exception cref="ArgumentException">An unknown model name (the message lists the known ones).</exception>
    /// <exception cref="ClipConfigException">The hub configuration is missing, unusable, or disagrees with the named model.</exception>
    /// <exception cref="FileNotFoundException">A weights path that does not exist.</exception>
    /// <exception cref="WeightDownloadException">A download failed or is impossible offline.</exception>
    public static ClipModelSource Resolve(string model, string? weights, WeightStore? store = null, CancellationToken cancellation = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(model);
        WeightStore? owned = null;
        try
        {
            return Resolve(model.Trim(), weights?.Trim(), () => store ?? (owned ??= new WeightStore()), cancellation);
        }
        finally
        {
            owned?.Dispose();
        }
    }

    /// <summary>True when <paramref name="model"/> is a model name or an <c>hf-hub:</c> name (whose configuration is read from the hub).</summary>
    /// <param name="model">What the user gave as the model.</param>
    public static bool IsModel(string? model) => model is not null && (ClipModels.Contains(model.Trim()) || HubModelId.IsHubName(model.Trim()));

    /// <summary>The message for a model that is neither a known name nor an <c>hf-hub:</c> name.</summary>
    /// <param name="model">What the user gave.</param>
    public static string UnknownModelMessage(string model) =>
        $"Unknown CLIP model '{model}'. Known: {string.Join(", ", ClipModels.Names)}; or an hf-hub: name whose open_clip_config.json gives the model, e.g. hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K.";

    private static ClipModelSource Resolve(string model, string? weights, Func<WeightStore> store, CancellationToken cancellation)
    {
        if (HubModelId.IsHubName(model))
        {
            var snapshot = Download(store, model, cancellation);
            if (snapshot.ConfigPath is null)
                throw new ClipConfigException(
                    $"{model} has no open_clip_config.json, so the model it holds is unknown. Give a model name ({string.Join(", ", ClipModels.Names)}) " +
                    $"as the model and {model} as the weights.");
            var config = OpenClipConfig.Load(snapshot.ConfigPath, model);
            if (weights is null || string.Equals(weights, model, StringComparison.OrdinalIgnoreCase)) return new(config, snapshot.WeightsPath);
            return new(config, LocalWeights(config.Model, weights, store, cancellation));
        }
        if (!ClipModels.Contains(model)) throw new ArgumentException(UnknownModelMessage(model), nameof(model));
        var named = new OpenClipConfig(ClipModels.Get(model), ClipPreprocessConfig.OpenAi);
        if (weights is null) return new(named, null);
        if (!HubModelId.IsHubName(weights)) return new(named, LocalWeights(named.Model, weights, store, cancellation));
        var hub = Download(store, weights, cancellation);
        if (hub.ConfigPath is null) return new(named, hub.WeightsPath);
        var stated = OpenClipConfig.Load(hub.ConfigPath, weights);
        return new(named with { Preprocess = stated.Preprocess }, Checked(named.Model, weights, hub, stated.Model));
    }

    private static string LocalWeights(ClipModelConfig config, string weights, Func<WeightStore> store, CancellationToken cancellation)
    {
        if (!HubModelId.IsHubName(weights))
            return File.Exists(weights) ? weights : throw new FileNotFoundException(
                $"CLIP weight file '{weights}' does not exist. Pass an OpenCLIP checkpoint (open_clip_pytorch_model.bin, " +
                "open_clip_model.safetensors or a .pt state dict) or a hub name such as hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K.", weights);
        var hub = Download(store, weights, cancellation);
        return hub.ConfigPath is null ? hub.WeightsPath : Checked(config, weights, hub, OpenClipConfig.Load(hub.ConfigPath, weights).Model);
    }

    private static string Checked(ClipModelConfig model, string weights, HubSnapshot hub, ClipModelConfig stated)
    {
        if (OpenClipConfig.SameModel(model, stated)) return hub.WeightsPath;
        string use = ClipModels.Contains(stated.Name) ? $"model {stated.Name} or " : "";
        throw new ClipConfigException(
            $"The weights {weights} are for another model than {model.Name}: their open_clip_config.json ({hub.ConfigPath}) describes " +
            $"{stated.Name} ({OpenClipConfig.Describe(stated)}), but {model.Name} is {OpenClipConfig.Describe(model)}. " +
            $"Use {use}model {weights} alone.");
    }

    private static HubSnapshot Download(Func<WeightStore> store, string name, CancellationToken cancellation) =>
        store().GetHubFilesAsync(HubModelId.Parse(name), HubFileSet.OpenClip, cancellation).GetAwaiter().GetResult();
}
