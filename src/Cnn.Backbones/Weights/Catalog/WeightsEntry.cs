using System.Globalization;
using System.Text.RegularExpressions;
using Cnn.Backbones.Models;

namespace Cnn.Backbones.Weights.Catalog;

/// <summary>
/// One set of pretrained weights of one architecture, as torchvision's <c>WeightsEnum</c> members describe them: the file's URL
/// (whose name carries a SHA-256 prefix, <c>name-&lt;hex&gt;.pth</c>), the preprocessing the weights expect, and the published
/// metadata. A family declares its entries beside its architectures (<see cref="ModelDefinition.Weights"/>).
/// </summary>
/// <param name="Name">Entry name as torchvision spells it, e.g. <c>IMAGENET1K_V2</c>.</param>
/// <param name="Url">Where the file is published, e.g. <c>https://download.pytorch.org/models/resnet50-11ad3fa6.pth</c>.</param>
/// <param name="Config">Preprocessing and head the weights were made with (input size, resize, crop, interpolation, mean/std, classes).</param>
/// <param name="Metadata">Published facts: parameter count, accuracy, recipe, categories.</param>
public sealed partial record WeightsEntry(string Name, string Url, PretrainedConfig Config, WeightsMetadata Metadata)
{
    /// <summary>Alias every architecture's default entry answers to (torchvision's <c>Weights.DEFAULT</c>).</summary>
    public const string DefaultAlias = "DEFAULT";

    /// <summary>
    /// Names under which torchvision published the same file before (e.g. efficientnet_b0's <c>efficientnet_b0_rwightman-3dd342df.pth</c>,
    /// whose name carried a wrong hash prefix until vision PR #8036 renamed it): a file cached under such a name by an older
    /// torchvision holds these weights, and is usable once its content matches <see cref="Sha256Prefix"/>. Empty for most entries.
    /// </summary>
    public IReadOnlyList<string> LegacyFileNames { get; init; } = [];

    /// <summary>The file name at the end of <see cref="Url"/>, which is also the cache file's name (torch.hub's convention).</summary>
    public string FileName => Url[(Url.LastIndexOf('/') + 1)..];

    /// <summary>
    /// The SHA-256 prefix in the file name (<c>resnet50-11ad3fa6.pth</c> → <c>11ad3fa6</c>), lower-case. torch.hub checks the
    /// downloaded file against it; so do we, and unlike torch.hub a name without one is an error, not a skipped check.
    /// </summary>
    /// <exception cref="FormatException">The file name has no SHA-256 prefix of at least 8 hex digits.</exception>
    public string Sha256Prefix => HashPrefixOf(FileName) ?? throw new FormatException(
        $"Weights '{Name}' ({Url}) have no SHA-256 prefix of at least 8 hex digits in their file name ('name-<hex>.ext'); " +
        "every catalog entry must carry one so the download can be verified.");

    /// <summary>The SHA-256 prefix of a torch.hub-style file name (<c>name-&lt;hex&gt;.ext</c>, 8 or more hex digits), or null.</summary>
    /// <param name="fileName">A file name such as <c>resnet50-11ad3fa6.pth</c>.</param>
    public static string? HashPrefixOf(string fileName)
    {
        ArgumentNullException.ThrowIfNull(fileName);
        var match = HashInName().Match(Path.GetFileName(fileName));
        return match.Success ? match.Groups[1].Value.ToLower(CultureInfo.InvariantCulture) : null;
    }

    [GeneratedRegex(@"-([0-9a-fA-F]{8,64})\.[A-Za-z0-9]+$")]
    private static partial Regex HashInName();
}

/// <summary>The published facts of a <see cref="WeightsEntry"/>, as torchvision's <c>meta</c> dictionary holds them.</summary>
/// <param name="ParameterCount">Parameters of the model the weights fit (<c>num_params</c>).</param>
/// <param name="Acc1">ImageNet-1k top-1 accuracy in percent (<c>_metrics["ImageNet-1K"]["acc@1"]</c>).</param>
/// <param name="Acc5">ImageNet-1k top-5 accuracy in percent.</param>
/// <param name="Recipe">Link to the training recipe (<c>recipe</c>).</param>
/// <param name="Categories">Class names, in the order of the classifier's outputs.</param>
/// <param name="TimmTag">
/// The tag timm gives the same file (<c>resnet50.tv2_in1k</c> → <c>tv2_in1k</c>), so the timm name resolves to this entry; null where timm has none.
/// </param>
public sealed record WeightsMetadata(long ParameterCount, double Acc1, double Acc5, string Recipe, IReadOnlyList<string> Categories, string? TimmTag = null)
{
    /// <summary>The file's size in MB as published (torchvision's <c>meta["_file_size"]</c>), or null where unknown.</summary>
    public double? FileSizeMegabytes { get; init; }

    /// <summary>
    /// Link to the licence of the weights where it is not the library's (torchvision's <c>meta["license"]</c>, e.g. the SWAG weights'
    /// CC-BY-NC 4.0: non-commercial use only); null where torchvision states none.
    /// </summary>
    public string? License { get; init; }
}
