using Cnn.Backbones.Weights.Catalog;
using static Cnn.Backbones.Weights.Catalog.TorchvisionWeights;

namespace Cnn.Backbones.Models;

public sealed partial class VisionTransformerFamily
{
    /// <summary>
    /// torchvision's pretrained weights of the Vision Transformer architectures, by model name: each <c>WeightsEnum</c>
    /// (e.g. <c>ViT_B_16_Weights</c>) with its members' file URL, evaluation transforms, <c>num_params</c>, ImageNet-1K acc@1/acc@5
    /// and recipe, timm's tag where timm publishes the same file, and which member <c>DEFAULT</c> is. Facts from torchvision's
    /// <c>torchvision/models/*.py</c>; the tests compare them with torchvision's own and the parameter counts with the built models.
    /// </summary>
    internal static IReadOnlyDictionary<string, TorchvisionWeightsEnum> WeightsEnums { get; } = new Dictionary<string, TorchvisionWeightsEnum>
    {
        [VisionTransformerFamily.Names.VitB16] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/vit_b_16-c867db91.pth", new(224, 256), 86_567_656, 81.072, 95.318,
                "https://github.com/pytorch/vision/tree/main/references/classification#vit_b_16"),
            ImageNet1K("IMAGENET1K_SWAG_E2E_V1", "https://download.pytorch.org/models/vit_b_16_swag-9ac1b537.pth", new(384, 384, "bicubic"), 86_859_496, 85.304, 97.65,
                "https://github.com/facebookresearch/SWAG", license: SwagLicense),
            ImageNet1K("IMAGENET1K_SWAG_LINEAR_V1", "https://download.pytorch.org/models/vit_b_16_lc_swag-4e70ced5.pth", new(224, 224, "bicubic"), 86_567_656, 81.886, 96.18,
                "https://github.com/pytorch/vision/pull/5793", license: SwagLicense),
        ]),
        [VisionTransformerFamily.Names.VitB32] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/vit_b_32-d86f8d99.pth", new(224, 256), 88_224_232, 75.912, 92.466,
                "https://github.com/pytorch/vision/tree/main/references/classification#vit_b_32"),
        ]),
        [VisionTransformerFamily.Names.VitL16] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/vit_l_16-852ce7e3.pth", new(224, 242), 304_326_632, 79.662, 94.638,
                "https://github.com/pytorch/vision/tree/main/references/classification#vit_l_16"),
            ImageNet1K("IMAGENET1K_SWAG_E2E_V1", "https://download.pytorch.org/models/vit_l_16_swag-4f3808c9.pth", new(512, 512, "bicubic"), 305_174_504, 88.064, 98.512,
                "https://github.com/facebookresearch/SWAG", license: SwagLicense),
            ImageNet1K("IMAGENET1K_SWAG_LINEAR_V1", "https://download.pytorch.org/models/vit_l_16_lc_swag-4d563306.pth", new(224, 224, "bicubic"), 304_326_632, 85.146, 97.422,
                "https://github.com/pytorch/vision/pull/5793", license: SwagLicense),
        ]),
        [VisionTransformerFamily.Names.VitL32] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/vit_l_32-c7638314.pth", new(224, 256), 306_535_400, 76.972, 93.07,
                "https://github.com/pytorch/vision/tree/main/references/classification#vit_l_32"),
        ]),
    };
}
