using Cnn.Backbones.Weights.Catalog;
using static Cnn.Backbones.Weights.Catalog.TorchvisionWeights;

namespace Cnn.Backbones.Models;

public sealed partial class VggFamily
{
    /// <summary>
    /// torchvision's pretrained weights of the VGG architectures, by model name: each <c>WeightsEnum</c>
    /// (e.g. <c>VGG16_Weights</c>) with its members' file URL, evaluation transforms, <c>num_params</c>, ImageNet-1K acc@1/acc@5
    /// and recipe, timm's tag where timm publishes the same file, and which member <c>DEFAULT</c> is. Facts from torchvision's
    /// <c>torchvision/models/*.py</c>; the tests compare them with torchvision's own and the parameter counts with the built models.
    /// </summary>
    internal static IReadOnlyDictionary<string, TorchvisionWeightsEnum> WeightsEnums { get; } = new Dictionary<string, TorchvisionWeightsEnum>
    {
        [VggFamily.Names.Vgg11] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/vgg11-8a719046.pth", new(224, 256), 132_863_336, 69.02, 88.628,
                "https://github.com/pytorch/vision/tree/main/references/classification#alexnet-and-vgg", "tv_in1k"),
        ]),
        [VggFamily.Names.Vgg11Bn] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/vgg11_bn-6002323d.pth", new(224, 256), 132_868_840, 70.37, 89.81,
                "https://github.com/pytorch/vision/tree/main/references/classification#alexnet-and-vgg", "tv_in1k"),
        ]),
        [VggFamily.Names.Vgg13] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/vgg13-19584684.pth", new(224, 256), 133_047_848, 69.928, 89.246,
                "https://github.com/pytorch/vision/tree/main/references/classification#alexnet-and-vgg", "tv_in1k"),
        ]),
        [VggFamily.Names.Vgg13Bn] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/vgg13_bn-abd245e5.pth", new(224, 256), 133_053_736, 71.586, 90.374,
                "https://github.com/pytorch/vision/tree/main/references/classification#alexnet-and-vgg", "tv_in1k"),
        ]),
        [VggFamily.Names.Vgg16] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/vgg16-397923af.pth", new(224, 256), 138_357_544, 71.592, 90.382,
                "https://github.com/pytorch/vision/tree/main/references/classification#alexnet-and-vgg", "tv_in1k"),
            // Only the features are usable: the file's classifier holds NaNs, so torchvision lists no categories (and no accuracy).
            new("IMAGENET1K_FEATURES", "https://download.pytorch.org/models/vgg16_features-amdegroot-88682ab5.pth", new(224, 256) { Mean = [0.48235, 0.45882, 0.40784], Std = [1.0 / 255, 1.0 / 255, 1.0 / 255] },
                new(138_357_544, double.NaN, double.NaN, "https://github.com/amdegroot/ssd.pytorch#training-ssd", [])),
        ]),
        [VggFamily.Names.Vgg16Bn] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/vgg16_bn-6c64b313.pth", new(224, 256), 138_365_992, 73.36, 91.516,
                "https://github.com/pytorch/vision/tree/main/references/classification#alexnet-and-vgg", "tv_in1k"),
        ]),
        [VggFamily.Names.Vgg19] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", new(224, 256), 143_667_240, 72.376, 90.876,
                "https://github.com/pytorch/vision/tree/main/references/classification#alexnet-and-vgg", "tv_in1k"),
        ]),
        [VggFamily.Names.Vgg19Bn] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/vgg19_bn-c79401a0.pth", new(224, 256), 143_678_248, 74.218, 91.842,
                "https://github.com/pytorch/vision/tree/main/references/classification#alexnet-and-vgg", "tv_in1k"),
        ]),
    };
}
