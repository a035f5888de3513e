using Cnn.Backbones.Models;

namespace Cnn.Backbones.Weights.Catalog;

/// <summary>
/// torchvision's <c>ImageClassification</c> preset, the evaluation transforms of a classification <c>WeightsEnum</c> member: resize
/// the shorter side to <see cref="ResizeSize"/> with <see cref="Interpolation"/>, centre-crop <see cref="CropSize"/>, scale to [0, 1]
/// and normalise with <see cref="Mean"/> and <see cref="Std"/> (ImageNet's unless the weights say otherwise).
/// </summary>
/// <param name="CropSize">Centre-crop size (<c>crop_size</c>), which is the model's input size.</param>
/// <param name="ResizeSize">Shorter-side resize before the crop (<c>resize_size</c>).</param>
/// <param name="Interpolation">Resize interpolation, <c>"bilinear"</c> (torchvision's default) or <c>"bicubic"</c>.</param>
internal sealed record ImageClassification(int CropSize, int ResizeSize, string Interpolation = "bilinear")
{
    /// <summary>Normalisation mean; ImageNet's by default.</summary>
    public IReadOnlyList<double> Mean { get; init; } = PretrainedConfig.ImageNetMean;

    /// <summary>Normalisation standard deviation; ImageNet's by default.</summary>
    public IReadOnlyList<double> Std { get; init; } = PretrainedConfig.ImageNetStd;

    /// <summary>The <see cref="PretrainedConfig"/> of these transforms: input 3×crop×crop, crop fraction crop/resize.</summary>
    public PretrainedConfig ToConfig(string firstConv, string classifier, int numClasses, string tag) =>
        new(new InputSize(3, CropSize, CropSize), Mean, Std, (double)CropSize / ResizeSize, Interpolation, firstConv, classifier, numClasses, tag);
}

/// <summary>
/// One member of a torchvision <c>WeightsEnum</c> (<c>ResNet50_Weights.IMAGENET1K_V2</c>) as a family declares it. The module
/// names of its <see cref="PretrainedConfig"/> (first convolution, classifier) are the model's own and are filled in when the
/// family registers the model (<see cref="ToEntry"/>), so they are stated once, in the family's configuration.
/// </summary>
/// <param name="Name">Member name, e.g. <c>IMAGENET1K_V2</c>.</param>
/// <param name="Url">The file's URL (its name carries the SHA-256 prefix).</param>
/// <param name="Transforms">The member's <c>transforms</c>.</param>
/// <param name="Metadata">The member's <c>meta</c>.</param>
internal sealed record TorchvisionWeights(string Name, string Url, ImageClassification Transforms, WeightsMetadata Metadata)
{
    /// <summary>Prefix of the <see cref="PretrainedConfig.Tag"/> of torchvision's entries (<c>"torchvision IMAGENET1K_V1"</c>).</summary>
    public const string TagPrefix = "torchvision ";

    /// <summary>Outputs of the file's classifier: the number of categories, or 1000 where torchvision lists none (VGG-16's feature weights).</summary>
    public int NumClasses => Metadata.Categories.Count > 0 ? Metadata.Categories.Count : 1000;

    /// <summary>Earlier names of the same file (see <see cref="WeightsEntry.LegacyFileNames"/>).</summary>
    public IReadOnlyList<string> LegacyFileNames { get; init; } = [];

    /// <summary>An ImageNet-1k member: 1000 categories (<see cref="ImageNetCategories.Names"/>) and its published numbers.</summary>
    /// <param name="name">Member name.</param>
    /// <param name="url">File URL.</param>
    /// <param name="transforms">Evaluation transforms.</param>
    /// <param name="parameters"><c>num_params</c>.</param>
    /// <param name="acc1">ImageNet-1K acc@1.</param>
    /// <param name="acc5">ImageNet-1K acc@5.</param>
    /// <param name="recipe"><c>recipe</c> link.</param>
    /// <param name="timmTag">timm's tag for the same file, or null.</param>
    /// <param name="license">Link to the weights' own licence (<c>meta["license"]</c>), or null.</param>
    public static TorchvisionWeights ImageNet1K(string name, string url, ImageClassification transforms, long parameters, double acc1, double acc5,
        string recipe, string? timmTag = null, string? license = null) =>
        new(name, url, transforms, new WeightsMetadata(parameters, acc1, acc5, recipe, ImageNetCategories.Names, timmTag) { License = license });

    /// <summary>The licence of the SWAG weights (CC-BY-NC 4.0, non-commercial use only), as torchvision links it.</summary>
    public const string SwagLicense = "https://github.com/facebookresearch/SWAG/blob/main/LICENSE";

    /// <summary>The catalog entry for a model whose own configuration is <paramref name="modelConfig"/> (its module names are used).</summary>
    /// <param name="modelConfig">The model's <see cref="ModelDefinition.DefaultConfig"/>.</param>
    public WeightsEntry ToEntry(PretrainedConfig modelConfig) =>
        new(Name, Url, Transforms.ToConfig(modelConfig.FirstConv, modelConfig.Classifier, NumClasses, TagPrefix + Name),
            Metadata with { FileSizeMegabytes = TorchvisionFileSizes.Of(Url[(Url.LastIndexOf('/') + 1)..]) })
        {
            LegacyFileNames = LegacyFileNames,
        };
}

/// <summary>A torchvision <c>WeightsEnum</c>: its members and the one <c>DEFAULT</c> points to.</summary>
/// <param name="Default">Name of the member <c>DEFAULT</c> is (torchvision's choice).</param>
/// <param name="Members">The members, in torchvision's order.</param>
internal sealed record TorchvisionWeightsEnum(string Default, IReadOnlyList<TorchvisionWeights> Members);

/// <summary>Attaches a family's declared torchvision weights to its model registrations.</summary>
internal static class TorchvisionWeightsRegistration
{
    /// <summary>
    /// <paramref name="model"/> with the entries <paramref name="byModel"/> declares for its name (unchanged where there are none).
    /// </summary>
    /// <param name="model">A registration.</param>
    /// <param name="byModel">The family's <c>WeightsEnum</c>s by model name.</param>
    /// <exception cref="InvalidOperationException">The declaration is inconsistent (no member is the default, or two share a name).</exception>
    public static ModelDefinition WithWeights(this ModelDefinition model, IReadOnlyDictionary<string, TorchvisionWeightsEnum> byModel)
    {
        if (!byModel.TryGetValue(model.Name, out var weights)) return model;
        var duplicate = weights.Members.GroupBy(m => m.Name, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new InvalidOperationException($"Model '{model.Name}' declares the weights '{duplicate.Key}' twice.");
        if (!weights.Members.Any(m => m.Name == weights.Default))
            throw new InvalidOperationException($"Model '{model.Name}' declares '{weights.Default}' as its default weights, which are not among its entries.");
        return model with
        {
            Weights = weights.Members.Select(m => m.ToEntry(model.DefaultConfig)).ToArray(),
            DefaultWeights = weights.Default,
        };
    }
}
