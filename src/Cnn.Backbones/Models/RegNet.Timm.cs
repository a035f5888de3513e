using Cnn.Backbones.Weights.Timm;

namespace Cnn.Backbones.Models;

/// <summary>
/// timm's RegNets in timm's own layout (<c>stem.conv/bn</c>, <c>s{stage}.b{block+1}</c> with <c>conv1/conv2/conv3</c>,
/// <c>se.fc1/fc2</c>, <c>downsample</c>, <c>head.fc</c>; the renames of timm's own <c>_filter_fn</c> for torchvision's files). The
/// timm names are those of timm's <c>tv2_in1k</c> tags, which are torchvision's weights of these networks; timm's
/// <c>regnetx_004</c>, <c>regnety_008</c> and <c>regnety_080</c> round their group widths otherwise and are refused.
/// </summary>
public sealed partial class RegNetFamily : ITimmFamily
{
    private static readonly RuleKeyMap TimmMap = new("timm regnet",
        KeyRule.ParseAll("stem.0 = stem.conv", "stem.1 = stem.bn", "fc = head.fc"),
        [
            BlockRule.Parse("trunk_output.block{s}.block{s}-{b} = s{s}.b{b+1}", BlockLayout.Parse("RegNet block",
                "proj.0 = downsample.conv", "proj.1 = downsample.bn", "f.a.0 = conv1.conv", "f.a.1 = conv1.bn", "f.b.0 = conv2.conv",
                "f.b.1 = conv2.bn", "f.se.fc1 = se.fc1", "f.se.fc2 = se.fc2", "f.c.0 = conv3.conv", "f.c.1 = conv3.bn")),
        ]);

    private static readonly IReadOnlyDictionary<string, string> TimmName = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["regnet_x_400mf"] = "regnetx_004_tv", ["regnet_x_800mf"] = "regnetx_008", ["regnet_x_1_6gf"] = "regnetx_016",
        ["regnet_x_3_2gf"] = "regnetx_032", ["regnet_x_8gf"] = "regnetx_080", ["regnet_x_16gf"] = "regnetx_160", ["regnet_x_32gf"] = "regnetx_320",
        ["regnet_y_400mf"] = "regnety_004", ["regnet_y_800mf"] = "regnety_008_tv", ["regnet_y_1_6gf"] = "regnety_016",
        ["regnet_y_3_2gf"] = "regnety_032", ["regnet_y_8gf"] = "regnety_080_tv", ["regnet_y_16gf"] = "regnety_160", ["regnet_y_32gf"] = "regnety_320",
    };

    /// <inheritdoc />
    ModelDefinition ITimmFamily.WithTimm(ModelDefinition definition) =>
        TimmName.TryGetValue(definition.Name, out var timm) ? definition with { TimmNames = [timm], TimmKeyMap = TimmMap } : definition;

    /// <inheritdoc />
    IReadOnlyList<TimmRefusal> ITimmFamily.TimmRefusals { get; } =
    [
        new(@"regnetx_004|regnety_008|regnety_080",
            "timm's own design rounds its group widths differently from torchvision's; torchvision's network is timm's regnetx_004_tv / regnety_008_tv / regnety_080_tv."),
        new(@"regnet[xy]_(002|006|040|064|120)|regnety_(1280|2560)\w*",
            "timm has this RegNet size but torchvision (and this library) does not; use a registered size (regnet_x_400mf … regnet_y_32gf)."),
        new(@"regnet[zv]_\w+", "RegNetZ/V are other networks (other blocks) and are not registered."),
    ];
}
