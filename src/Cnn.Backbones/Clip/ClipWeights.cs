using Cnn.Backbones.Weights;
using static TorchSharp.torch;

namespace Cnn.Backbones.Clip;

/// <summary>CLIP weights that do not fit the model they are loaded into: another image tower or another size.</summary>
public sealed class ClipWeightsException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong and how to fix it.</param>
    /// <param name="inner">The underlying error, or null.</param>
    public ClipWeightsException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>Reads what an OpenCLIP state dict holds, and checks it against a configuration before anything is copied.</summary>
public static class ClipWeights
{
    /// <summary>A copy of the keys (aliases of the tensors) with a <c>module.</c> prefix dropped.</summary>
    /// <param name="weights">The checkpoint.</param>
    public static StateDict Prepare(StateDict weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var copy = new StateDict();
        bool wrapped = weights.Keys.Any() && weights.Keys.All(k => k.StartsWith("module.", StringComparison.Ordinal));
        foreach (var (name, tensor) in weights)
            copy.Add(wrapped ? name["module.".Length..] : name, tensor.alias());
        return copy;
    }

    /// <summary>
    /// The configuration the weights describe (tower kind, widths, depths, patch, image size; OpenCLIP's shapes), named after a
    /// known model when one matches, e.g. <c>ViT-L-14</c>; null when the weights are not an OpenCLIP CLIP state dict.
    /// QuickGELU cannot be read from weights and is reported as false.
    /// </summary>
    /// <param name="weights">The checkpoint (after <see cref="Prepare"/>).</param>
    public static ClipModelConfig? Infer(StateDict weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (!weights.TryGetValue("text_projection", out var textProjection) || textProjection.dim() != 2) return null;
        if (!weights.TryGetValue("token_embedding.weight", out var tokens) || !weights.TryGetValue("positional_embedding", out var positions)) return null;
        int embed = (int)textProjection.shape[1];
        int textWidth = (int)tokens.shape[1];
        int textLayers = CountBlocks(weights, "transformer.resblocks.");
        var text = new ClipTextConfig((int)positions.shape[0], (int)tokens.shape[0], textWidth, Math.Max(1, textWidth / 64), textLayers);
        ClipVisionConfig vision;
        if (weights.TryGetValue("visual.conv1.weight", out var conv) && weights.TryGetValue("visual.class_embedding", out var cls))
        {
            int width = (int)cls.shape[0];
            int patch = (int)conv.shape[^1];
            long grid = (long)Math.Round(Math.Sqrt(weights["visual.positional_embedding"].shape[0] - 1));
            vision = new ClipVisionConfig((int)(grid * patch), [CountBlocks(weights, "visual.transformer.resblocks.")], width, patch);
        }
        else if (weights.TryGetValue("visual.attnpool.positional_embedding", out var pool) && weights.TryGetValue("visual.conv3.weight", out var stem))
        {
            int width = (int)stem.shape[0];
            var depths = Enumerable.Range(1, 4).Select(s => CountBlocks(weights, $"visual.layer{s}.")).ToArray();
            long grid = (long)Math.Round(Math.Sqrt(pool.shape[0] - 1));
            vision = new ClipVisionConfig((int)(grid * 32), depths, width, null);
        }
        else
        {
            return null;
        }
        var inferred = new ClipModelConfig("?", embed, vision, text, false);
        var known = ClipModels.All.FirstOrDefault(c => !c.QuickGelu && Same(c, inferred));
        return inferred with { Name = known?.Name ?? "an unregistered CLIP configuration" };
    }

    /// <summary>Throws a <see cref="ClipWeightsException"/> that names what the weights hold when it is not <paramref name="config"/>.</summary>
    /// <param name="weights">The checkpoint (after <see cref="Prepare"/>).</param>
    /// <param name="config">The model being loaded.</param>
    /// <param name="source">Where the weights came from, for messages.</param>
    public static void CheckFits(StateDict weights, ClipModelConfig config, string source)
    {
        ArgumentNullException.ThrowIfNull(config);
        var inferred = Infer(weights);
        if (inferred is null)
        {
            string hint = weights.Keys.Any(k => k.StartsWith("visual.trunk.", StringComparison.Ordinal))
                ? " It has a timm image tower (visual.trunk.*), which this library does not build."
                : weights.Keys.Any(k => k.StartsWith("state_dict.", StringComparison.Ordinal) || k == "state_dict")
                    ? " It looks like a training checkpoint; save its 'state_dict' entry alone."
                    : "";
            throw new ClipWeightsException(
                $"{source} is not an OpenCLIP CLIP state dict (no text_projection / token_embedding / visual.conv1 or visual.attnpool keys; " +
                $"first keys: {string.Join(", ", weights.Keys.Take(5))}).{hint}");
        }
        if (inferred.Vision.IsResNet != config.Vision.IsResNet)
            throw new ClipWeightsException(
                $"{source} holds a {(inferred.Vision.IsResNet ? "ModifiedResNet" : "ViT")} image tower ({inferred.Name}: {inferred.Vision.Describe()}), " +
                $"but {config.Name} has a {(config.Vision.IsResNet ? "ModifiedResNet" : "ViT")} one. Load it into {Suggest(inferred)}.");
        if (!Same(config, inferred))
            throw new ClipWeightsException(
                $"{source} holds {inferred.Name} (image tower {inferred.Vision.Describe()}; text width {inferred.Text.Width}, {inferred.Text.Layers} blocks; " +
                $"embedding {inferred.EmbedDim}), but the model is {config.Name} (image tower {config.Vision.Describe()}; text width {config.Text.Width}, " +
                $"{config.Text.Layers} blocks; embedding {config.EmbedDim}). Load it into {Suggest(inferred)}.");
    }

    /// <summary>
    /// Throws a <see cref="ClipWeightsException"/> that names what an OpenCLIP state dict holds when its image tower is not the one
    /// of <paramref name="config"/> (kind, width, depth, patch, embedding width); the image size may differ, and the text tower
    /// is not looked at.
    /// </summary>
    /// <param name="weights">The checkpoint (after <see cref="Prepare"/>).</param>
    /// <param name="config">The image tower's CLIP model.</param>
    /// <param name="model">The model being loaded, for messages (e.g. <c>clip_vit_b32</c>).</param>
    /// <param name="modelFor">The model to suggest for an OpenCLIP model name (e.g. <c>clip_vit_b32</c> for <c>ViT-B-32</c>), or null.</param>
    public static void CheckImageTower(StateDict weights, ClipModelConfig config, string model, Func<string, string?>? modelFor = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var inferred = Infer(weights) ?? throw new ClipWeightsException(
            $"The checkpoint loaded into {model} is not an OpenCLIP CLIP state dict (no visual.conv1 or visual.attnpool keys; first keys: " +
            $"{string.Join(", ", weights.Keys.Take(5))}).");
        var (a, b) = (inferred.Vision, config.Vision);
        if (inferred.EmbedDim == config.EmbedDim && a.IsResNet == b.IsResNet && a.Width == b.Width && a.PatchSize == b.PatchSize && a.Layers.SequenceEqual(b.Layers))
            return;
        string known = modelFor?.Invoke(inferred.Name) is { } suggested ? $" Load it into {suggested}." : "";
        throw new ClipWeightsException(
            $"The OpenCLIP checkpoint holds {inferred.Name} (image tower {a.Describe()}, embedding {inferred.EmbedDim}), but {model} is the image tower of " +
            $"{config.Name} ({b.Describe()}, embedding {config.EmbedDim}); nothing was loaded.{known}");
    }

    private static string Suggest(ClipModelConfig inferred) =>
        ClipModels.Contains(inferred.Name) ? $"{inferred.Name} (or {inferred.Name}-quickgelu for OpenAI's original checkpoints)" : "a matching configuration";

    private static bool Same(ClipModelConfig a, ClipModelConfig b) =>
        a.EmbedDim == b.EmbedDim && a.Vision.IsResNet == b.Vision.IsResNet && a.Vision.Width == b.Vision.Width &&
        a.Vision.ImageSize == b.Vision.ImageSize && a.Vision.PatchSize == b.Vision.PatchSize && a.Vision.Layers.SequenceEqual(b.Vision.Layers) &&
        a.Text.Width == b.Text.Width && a.Text.Layers == b.Text.Layers && a.Text.ContextLength == b.Text.ContextLength &&
        a.Text.VocabularySize == b.Text.VocabularySize;

    private static int CountBlocks(StateDict weights, string prefix)
    {
        var indices = new HashSet<int>();
        foreach (var key in weights.Keys)
        {
            if (!key.StartsWith(prefix, StringComparison.Ordinal)) continue;
            var rest = key.AsSpan(prefix.Length);
            int dot = rest.IndexOf('.');
            if (dot > 0 && int.TryParse(rest[..dot], out int index)) indices.Add(index);
        }
        return indices.Count;
    }
}
