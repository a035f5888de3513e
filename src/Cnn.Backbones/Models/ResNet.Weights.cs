using Cnn.Backbones.Weights.Catalog;
using static Cnn.Backbones.Weights.Catalog.TorchvisionWeights;

namespace Cnn.Backbones.Models;

public sealed partial class ResNetFamily
{
    /// <summary>
    /// torchvision's pretrained weights of the ResNet, ResNeXt and Wide ResNet architectures, by model name: each <c>WeightsEnum</c>
    /// (e.g. <c>ResNet50_Weights</c>) with its members' file URL, evaluation transforms, <c>num_params</c>, ImageNet-1K acc@1/acc@5
    /// and recipe, timm's tag where timm publishes the same file, and which member <c>DEFAULT</c> is. Facts from torchvision's
    /// <c>torchvision/models/*.py</c>; the tests compare them with torchvision's own and the parameter counts with the built models.
    /// </summary>
    internal static IReadOnlyDictionary<string, TorchvisionWeightsEnum> WeightsEnums { get; } = new Dictionary<string, TorchvisionWeightsEnum>
    {
        [ResNetFamily.Names.ResNet18] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/resnet18-f37072fd.pth", new(224, 256), 11_689_512, 69.758, 89.078,
                "https://github.com/pytorch/vision/tree/main/references/classification#resnet", "tv_in1k"),
        ]),
        [ResNetFamily.Names.ResNet34] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/resnet34-b627a593.pth", new(224, 256), 21_797_672, 73.314, 91.42,
                "https://github.com/pytorch/vision/tree/main/references/classification#resnet", "tv_in1k"),
        ]),
        [ResNetFamily.Names.ResNet50] = new("IMAGENET1K_V2",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/resnet50-0676ba61.pth", new(224, 256), 25_557_032, 76.13, 92.862,
                "https://github.com/pytorch/vision/tree/main/references/classification#resnet", "tv_in1k"),
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/resnet50-11ad3fa6.pth", new(224, 232), 25_557_032, 80.858, 95.434,
                "https://github.com/pytorch/vision/issues/3995#issuecomment-1013906621", "tv2_in1k"),
        ]),
        [ResNetFamily.Names.ResNet101] = new("IMAGENET1K_V2",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/resnet101-63fe2227.pth", new(224, 256), 44_549_160, 77.374, 93.546,
                "https://github.com/pytorch/vision/tree/main/references/classification#resnet", "tv_in1k"),
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/resnet101-cd907fc2.pth", new(224, 232), 44_549_160, 81.886, 95.78,
                "https://github.com/pytorch/vision/issues/3995#new-recipe", "tv2_in1k"),
        ]),
        [ResNetFamily.Names.ResNet152] = new("IMAGENET1K_V2",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/resnet152-394f9c45.pth", new(224, 256), 60_192_808, 78.312, 94.046,
                "https://github.com/pytorch/vision/tree/main/references/classification#resnet", "tv_in1k"),
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/resnet152-f82ba261.pth", new(224, 232), 60_192_808, 82.284, 96.002,
                "https://github.com/pytorch/vision/issues/3995#new-recipe", "tv2_in1k"),
        ]),
        [ResNetFamily.Names.ResNeXt50_32x4d] = new("IMAGENET1K_V2",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/resnext50_32x4d-7cdf4587.pth", new(224, 256), 25_028_904, 77.618, 93.698,
                "https://github.com/pytorch/vision/tree/main/references/classification#resnext", "tv_in1k"),
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/resnext50_32x4d-1a0047aa.pth", new(224, 232), 25_028_904, 81.198, 95.34,
                "https://github.com/pytorch/vision/issues/3995#new-recipe", "tv2_in1k"),
        ]),
        [ResNetFamily.Names.ResNeXt101_32x8d] = new("IMAGENET1K_V2",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/resnext101_32x8d-8ba56ff5.pth", new(224, 256), 88_791_336, 79.312, 94.526,
                "https://github.com/pytorch/vision/tree/main/references/classification#resnext", "tv_in1k"),
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/resnext101_32x8d-110c445d.pth", new(224, 232), 88_791_336, 82.834, 96.228,
                "https://github.com/pytorch/vision/issues/3995#new-recipe-with-fixres", "tv2_in1k"),
        ]),
        [ResNetFamily.Names.ResNeXt101_64x4d] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/resnext101_64x4d-173b62eb.pth", new(224, 232), 83_455_272, 83.246, 96.454,
                "https://github.com/pytorch/vision/pull/5935", "tv_in1k"),
        ]),
        [ResNetFamily.Names.WideResNet50_2] = new("IMAGENET1K_V2",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/wide_resnet50_2-95faca4d.pth", new(224, 256), 68_883_240, 78.468, 94.086,
                "https://github.com/pytorch/vision/pull/912#issue-445437439", "tv_in1k"),
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/wide_resnet50_2-9ba9bcbe.pth", new(224, 232), 68_883_240, 81.602, 95.758,
                "https://github.com/pytorch/vision/issues/3995#new-recipe-with-fixres", "tv2_in1k"),
        ]),
        [ResNetFamily.Names.WideResNet101_2] = new("IMAGENET1K_V2",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/wide_resnet101_2-32ee1156.pth", new(224, 256), 126_886_696, 78.848, 94.284,
                "https://github.com/pytorch/vision/pull/912#issue-445437439", "tv_in1k"),
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/wide_resnet101_2-d733dc28.pth", new(224, 232), 126_886_696, 82.51, 96.02,
                "https://github.com/pytorch/vision/issues/3995#new-recipe", "tv2_in1k"),
        ]),
    };
}
