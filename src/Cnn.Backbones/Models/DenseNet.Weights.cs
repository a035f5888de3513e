using Cnn.Backbones.Weights.Catalog;
using static Cnn.Backbones.Weights.Catalog.TorchvisionWeights;

namespace Cnn.Backbones.Models;

public sealed partial class DenseNetFamily
{
    /// <summary>
    /// torchvision's pretrained weights of the DenseNet architectures, by model name: each <c>WeightsEnum</c>
    /// (e.g. <c>DenseNet121_Weights</c>) with its members' file URL, evaluation transforms, <c>num_params</c>, ImageNet-1K acc@1/acc@5
    /// and recipe, timm's tag where timm publishes the same file, and which member <c>DEFAULT</c> is. Facts from torchvision's
    /// <c>torchvision/models/*.py</c>; the tests compare them with torchvision's own and the parameter counts with the built models.
    /// </summary>
    internal static IReadOnlyDictionary<string, TorchvisionWeightsEnum> WeightsEnums { get; } = new Dictionary<string, TorchvisionWeightsEnum>
    {
        [DenseNetFamily.Names.DenseNet121] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/densenet121-a639ec97.pth", new(224, 256), 7_978_856, 74.434, 91.972,
                "https://github.com/pytorch/vision/pull/116", "tv_in1k"),
        ]),
        [DenseNetFamily.Names.DenseNet161] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/densenet161-8d451a50.pth", new(224, 256), 28_681_000, 77.138, 93.56,
                "https://github.com/pytorch/vision/pull/116", "tv_in1k"),
        ]),
        [DenseNetFamily.Names.DenseNet169] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/densenet169-b2777c0a.pth", new(224, 256), 14_149_480, 75.6, 92.806,
                "https://github.com/pytorch/vision/pull/116", "tv_in1k"),
        ]),
        [DenseNetFamily.Names.DenseNet201] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/densenet201-c1103571.pth", new(224, 256), 20_013_928, 76.896, 93.37,
                "https://github.com/pytorch/vision/pull/116", "tv_in1k"),
        ]),
    };
}
