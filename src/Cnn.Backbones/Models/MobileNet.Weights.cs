using Cnn.Backbones.Weights.Catalog;
using static Cnn.Backbones.Weights.Catalog.TorchvisionWeights;

namespace Cnn.Backbones.Models;

public sealed partial class MobileNetFamily
{
    /// <summary>
    /// torchvision's pretrained weights of the MobileNet v2 and v3 architectures, by model name: each <c>WeightsEnum</c>
    /// (e.g. <c>MobileNet_V3_Large_Weights</c>) with its members' file URL, evaluation transforms, <c>num_params</c>, ImageNet-1K acc@1/acc@5
    /// and recipe, timm's tag where timm publishes the same file, and which member <c>DEFAULT</c> is. Facts from torchvision's
    /// <c>torchvision/models/*.py</c>; the tests compare them with torchvision's own and the parameter counts with the built models.
    /// </summary>
    internal static IReadOnlyDictionary<string, TorchvisionWeightsEnum> WeightsEnums { get; } = new Dictionary<string, TorchvisionWeightsEnum>
    {
        [MobileNetFamily.Names.MobileNetV2] = new("IMAGENET1K_V2",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth", new(224, 256), 3_504_872, 71.878, 90.286,
                "https://github.com/pytorch/vision/tree/main/references/classification#mobilenetv2"),
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/mobilenet_v2-7ebf99e0.pth", new(224, 232), 3_504_872, 72.154, 90.822,
                "https://github.com/pytorch/vision/issues/3995#new-recipe-with-reg-tuning"),
        ]),
        [MobileNetFamily.Names.MobileNetV3Small] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/mobilenet_v3_small-047dcff4.pth", new(224, 256), 2_542_856, 67.668, 87.402,
                "https://github.com/pytorch/vision/tree/main/references/classification#mobilenetv3-large--small"),
        ]),
        [MobileNetFamily.Names.MobileNetV3Large] = new("IMAGENET1K_V2",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/mobilenet_v3_large-8738ca79.pth", new(224, 256), 5_483_032, 74.042, 91.34,
                "https://github.com/pytorch/vision/tree/main/references/classification#mobilenetv3-large--small"),
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/mobilenet_v3_large-5c1a4163.pth", new(224, 232), 5_483_032, 75.274, 92.566,
                "https://github.com/pytorch/vision/issues/3995#new-recipe-with-reg-tuning"),
        ]),
    };
}
