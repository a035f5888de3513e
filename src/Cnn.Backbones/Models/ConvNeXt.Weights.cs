using Cnn.Backbones.Weights.Catalog;
using static Cnn.Backbones.Weights.Catalog.TorchvisionWeights;

namespace Cnn.Backbones.Models;

public sealed partial class ConvNeXtFamily
{
    /// <summary>
    /// torchvision's pretrained weights of the ConvNeXt architectures, by model name: each <c>WeightsEnum</c>
    /// (e.g. <c>ConvNeXt_Tiny_Weights</c>) with its members' file URL, evaluation transforms, <c>num_params</c>, ImageNet-1K acc@1/acc@5
    /// and recipe, timm's tag where timm publishes the same file, and which member <c>DEFAULT</c> is. Facts from torchvision's
    /// <c>torchvision/models/*.py</c>; the tests compare them with torchvision's own and the parameter counts with the built models.
    /// </summary>
    internal static IReadOnlyDictionary<string, TorchvisionWeightsEnum> WeightsEnums { get; } = new Dictionary<string, TorchvisionWeightsEnum>
    {
        [ConvNeXtFamily.Names.ConvNeXtTiny] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/convnext_tiny-983f1562.pth", new(224, 236), 28_589_128, 82.52, 96.146,
                "https://github.com/pytorch/vision/tree/main/references/classification#convnext"),
        ]),
        [ConvNeXtFamily.Names.ConvNeXtSmall] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/convnext_small-0c510722.pth", new(224, 230), 50_223_688, 83.616, 96.65,
                "https://github.com/pytorch/vision/tree/main/references/classification#convnext"),
        ]),
        [ConvNeXtFamily.Names.ConvNeXtBase] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/convnext_base-6075fbad.pth", new(224, 232), 88_591_464, 84.062, 96.87,
                "https://github.com/pytorch/vision/tree/main/references/classification#convnext"),
        ]),
        [ConvNeXtFamily.Names.ConvNeXtLarge] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/convnext_large-ea097f82.pth", new(224, 232), 197_767_336, 84.414, 96.976,
                "https://github.com/pytorch/vision/tree/main/references/classification#convnext"),
        ]),
    };
}
