namespace Cnn.Backbones.Clip;

/// <summary>
/// The image tower of a CLIP model, as OpenCLIP's <c>vision_cfg</c> states it: a Vision Transformer (<see cref="PatchSize"/> set,
/// one <see cref="Layers"/> entry) or OpenAI's ModifiedResNet (four <see cref="Layers"/> entries, no patch size).
/// </summary>
/// <param name="ImageSize">Input side in pixels (square).</param>
/// <param name="Layers">Transformer blocks (one entry) or the blocks of the ResNet's four stages.</param>
/// <param name="Width">Token width (ViT) or the stem's width (ResNet: stage widths are 1, 2, 4, 8 × this, times 4 out).</param>
/// <param name="PatchSize">Patch side (ViT); null for the ResNet.</param>
/// <param name="HeadWidth">Width of one attention head (64 everywhere here).</param>
/// <param name="MlpRatio">MLP hidden width / token width (ViT).</param>
public sealed record ClipVisionConfig(int ImageSize, IReadOnlyList<int> Layers, int Width, int? PatchSize, int HeadWidth = 64, double MlpRatio = 4.0)
{
    /// <summary>True for OpenAI's ModifiedResNet image tower.</summary>
    public bool IsResNet => PatchSize is null;

    /// <summary>Attention heads: width / head width (ViT), or 32 · width / head width in the ResNet's attention pool.</summary>
    public int Heads => IsResNet ? Width * 32 / HeadWidth : Width / HeadWidth;

    /// <summary>A short description, e.g. "ViT (width 768, 12 blocks, patch 32, 224 px)".</summary>
    public string Describe() => IsResNet
        ? $"ModifiedResNet (stem width {Width}, blocks [{string.Join(", ", Layers)}], {ImageSize} px)"
        : $"ViT (width {Width}, {Layers[0]} blocks, patch {PatchSize}, {ImageSize} px)";
}

/// <summary>The text tower of a CLIP model, as OpenCLIP's <c>text_cfg</c> states it.</summary>
/// <param name="ContextLength">Tokens per text (77).</param>
/// <param name="VocabularySize">Token embedding rows (49,408).</param>
/// <param name="Width">Token width.</param>
/// <param name="Heads">Attention heads.</param>
/// <param name="Layers">Transformer blocks.</param>
/// <param name="MlpRatio">MLP hidden width / token width.</param>
public sealed record ClipTextConfig(int ContextLength, int VocabularySize, int Width, int Heads, int Layers, double MlpRatio = 4.0);

/// <summary>A CLIP model: its name, joint embedding width, towers and activation (OpenCLIP's <c>model_configs/*.json</c>).</summary>
/// <param name="Name">OpenCLIP's model name, e.g. <c>ViT-B-32</c>.</param>
/// <param name="EmbedDim">Width of the joint image–text embedding.</param>
/// <param name="Vision">The image tower.</param>
/// <param name="Text">The text tower.</param>
/// <param name="QuickGelu">
/// True: the MLPs use QuickGELU, x·σ(1.702x), as OpenAI's original checkpoints were trained (the <c>-quickgelu</c> names); false:
/// exact GELU. The weights do not tell which; OpenAI's own checkpoints need the <c>-quickgelu</c> variant.
/// </param>
public sealed record ClipModelConfig(string Name, int EmbedDim, ClipVisionConfig Vision, ClipTextConfig Text, bool QuickGelu)
{
    /// <summary>The same configuration under a new name with QuickGELU on or off.</summary>
    /// <param name="quickGelu">Whether the MLPs use QuickGELU.</param>
    public ClipModelConfig WithQuickGelu(bool quickGelu) => this with { QuickGelu = quickGelu, Name = quickGelu ? Name + "-quickgelu" : Name };
}

/// <summary>The CLIP models this library builds, with OpenCLIP's configurations (facts from its <c>model_configs</c>).</summary>
public static class ClipModels
{
    private static readonly ClipTextConfig Text512 = new(77, 49408, 512, 8, 12);
    private static readonly ClipTextConfig Text768 = new(77, 49408, 768, 12, 12);

    private static readonly ClipModelConfig[] Base =
    [
        new("ViT-B-32", 512, new ClipVisionConfig(224, [12], 768, 32), Text512, false),
        new("ViT-B-16", 512, new ClipVisionConfig(224, [12], 768, 16), Text512, false),
        new("ViT-L-14", 768, new ClipVisionConfig(224, [24], 1024, 14), Text768, false),
        new("RN50", 1024, new ClipVisionConfig(224, [3, 4, 6, 3], 64, null), Text512, false),
    ];

    /// <summary>Every configuration: each base model and its <c>-quickgelu</c> variant.</summary>
    public static IReadOnlyList<ClipModelConfig> All { get; } = Base.Concat(Base.Select(c => c.WithQuickGelu(true))).ToArray();

    /// <summary>The model names, e.g. <c>ViT-B-32</c>, <c>ViT-B-32-quickgelu</c>.</summary>
    public static IReadOnlyList<string> Names { get; } = All.Select(c => c.Name).ToArray();

    /// <summary>The configuration named <paramref name="name"/> (case-insensitive).</summary>
    /// <param name="name">A name from <see cref="Names"/>.</param>
    /// <exception cref="ArgumentException">Unknown name; the message lists the known ones.</exception>
    public static ClipModelConfig Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return All.FirstOrDefault(c => string.Equals(c.Name, name, StringComparison.OrdinalIgnoreCase))
            ?? throw new ArgumentException($"Unknown CLIP model '{name}'. Known: {string.Join(", ", Names)}.", nameof(name));
    }

    /// <summary>True when <paramref name="name"/> is a CLIP model name.</summary>
    /// <param name="name">A model name.</param>
    public static bool Contains(string name) => All.Any(c => string.Equals(c.Name, name, StringComparison.OrdinalIgnoreCase));
}
