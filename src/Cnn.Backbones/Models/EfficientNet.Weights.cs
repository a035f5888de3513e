using Cnn.Backbones.Weights.Catalog;
using static Cnn.Backbones.Weights.Catalog.TorchvisionWeights;

namespace Cnn.Backbones.Models;

public sealed partial class EfficientNetFamily
{
    /// <summary>
    /// torchvision's pretrained weights of the EfficientNet and EfficientNetV2 architectures, by model name: each <c>WeightsEnum</c>
    /// (e.g. <c>EfficientNet_B0_Weights</c>) with its members' file URL, evaluation transforms, <c>num_params</c>, ImageNet-1K acc@1/acc@5
    /// and recipe, timm's tag where timm publishes the same file, and which member <c>DEFAULT</c> is. Facts from torchvision's
    /// <c>torchvision/models/*.py</c>; the tests compare them with torchvision's own and the parameter counts with the built models.
    /// </summary>
    internal static IReadOnlyDictionary<string, TorchvisionWeightsEnum> WeightsEnums { get; } = new Dictionary<string, TorchvisionWeightsEnum>
    {
        [EfficientNetFamily.Names.EfficientNetB0] = new("IMAGENET1K_V1",
        [
            // vision PR #8036 renamed the file: torchvision 0.16.0 and earlier call it efficientnet_b0_rwightman-3dd342df.pth, a name with a wrong hash prefix.
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b0_rwightman-7f5810bc.pth", new(224, 256, "bicubic"), 5_288_548, 77.692, 93.532,
                "https://github.com/pytorch/vision/tree/main/references/classification#efficientnet-v1") with { LegacyFileNames = ["efficientnet_b0_rwightman-3dd342df.pth"] },
        ]),
        [EfficientNetFamily.Names.EfficientNetB1] = new("IMAGENET1K_V2",
        [
            // vision PR #8036 renamed the file: torchvision 0.16.0 and earlier call it efficientnet_b1_rwightman-533bc792.pth, a name with a wrong hash prefix.
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b1_rwightman-bac287d4.pth", new(240, 256, "bicubic"), 7_794_184, 78.642, 94.186,
                "https://github.com/pytorch/vision/tree/main/references/classification#efficientnet-v1") with { LegacyFileNames = ["efficientnet_b1_rwightman-533bc792.pth"] },
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/efficientnet_b1-c27df63c.pth", new(240, 255), 7_794_184, 79.838, 94.934,
                "https://github.com/pytorch/vision/issues/3995#new-recipe-with-lr-wd-crop-tuning"),
        ]),
        [EfficientNetFamily.Names.EfficientNetB2] = new("IMAGENET1K_V1",
        [
            // vision PR #8036 renamed the file: torchvision 0.16.0 and earlier call it efficientnet_b2_rwightman-bcdf34b7.pth, a name with a wrong hash prefix.
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b2_rwightman-c35c1473.pth", new(288, 288, "bicubic"), 9_109_994, 80.608, 95.31,
                "https://github.com/pytorch/vision/tree/main/references/classification#efficientnet-v1") with { LegacyFileNames = ["efficientnet_b2_rwightman-bcdf34b7.pth"] },
        ]),
        [EfficientNetFamily.Names.EfficientNetB3] = new("IMAGENET1K_V1",
        [
            // vision PR #8036 renamed the file: torchvision 0.16.0 and earlier call it efficientnet_b3_rwightman-cf984f9c.pth, a name with a wrong hash prefix.
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b3_rwightman-b3899882.pth", new(300, 320, "bicubic"), 12_233_232, 82.008, 96.054,
                "https://github.com/pytorch/vision/tree/main/references/classification#efficientnet-v1") with { LegacyFileNames = ["efficientnet_b3_rwightman-cf984f9c.pth"] },
        ]),
        [EfficientNetFamily.Names.EfficientNetB4] = new("IMAGENET1K_V1",
        [
            // vision PR #8036 renamed the file: torchvision 0.16.0 and earlier call it efficientnet_b4_rwightman-7eb33cd5.pth, a name with a wrong hash prefix.
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b4_rwightman-23ab8bcd.pth", new(380, 384, "bicubic"), 19_341_616, 83.384, 96.594,
                "https://github.com/pytorch/vision/tree/main/references/classification#efficientnet-v1") with { LegacyFileNames = ["efficientnet_b4_rwightman-7eb33cd5.pth"] },
        ]),
        [EfficientNetFamily.Names.EfficientNetB5] = new("IMAGENET1K_V1",
        [
            // vision PR #8036 renamed the file: torchvision 0.16.0 and earlier call it efficientnet_b5_lukemelas-b6417697.pth, a name with a wrong hash prefix.
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b5_lukemelas-1a07897c.pth", new(456, 456, "bicubic"), 30_389_784, 83.444, 96.628,
                "https://github.com/pytorch/vision/tree/main/references/classification#efficientnet-v1") with { LegacyFileNames = ["efficientnet_b5_lukemelas-b6417697.pth"] },
        ]),
        [EfficientNetFamily.Names.EfficientNetB6] = new("IMAGENET1K_V1",
        [
            // vision PR #8036 renamed the file: torchvision 0.16.0 and earlier call it efficientnet_b6_lukemelas-c76e70fd.pth, a name with a wrong hash prefix.
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b6_lukemelas-24a108a5.pth", new(528, 528, "bicubic"), 43_040_704, 84.008, 96.916,
                "https://github.com/pytorch/vision/tree/main/references/classification#efficientnet-v1") with { LegacyFileNames = ["efficientnet_b6_lukemelas-c76e70fd.pth"] },
        ]),
        [EfficientNetFamily.Names.EfficientNetB7] = new("IMAGENET1K_V1",
        [
            // vision PR #8036 renamed the file: torchvision 0.16.0 and earlier call it efficientnet_b7_lukemelas-dcc49843.pth, a name with a wrong hash prefix.
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b7_lukemelas-c5b4e57e.pth", new(600, 600, "bicubic"), 66_347_960, 84.122, 96.908,
                "https://github.com/pytorch/vision/tree/main/references/classification#efficientnet-v1") with { LegacyFileNames = ["efficientnet_b7_lukemelas-dcc49843.pth"] },
        ]),
        [EfficientNetFamily.Names.EfficientNetV2S] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_v2_s-dd5fe13b.pth", new(384, 384), 21_458_488, 84.228, 96.878,
                "https://github.com/pytorch/vision/tree/main/references/classification#efficientnet-v2"),
        ]),
        [EfficientNetFamily.Names.EfficientNetV2M] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_v2_m-dc08266a.pth", new(480, 480), 54_139_356, 85.112, 97.156,
                "https://github.com/pytorch/vision/tree/main/references/classification#efficientnet-v2"),
        ]),
        [EfficientNetFamily.Names.EfficientNetV2L] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_v2_l-59c71312.pth", new(480, 480, "bicubic") { Mean = [0.5, 0.5, 0.5], Std = [0.5, 0.5, 0.5] }, 118_515_272, 85.808, 97.788,
                "https://github.com/pytorch/vision/tree/main/references/classification#efficientnet-v2"),
        ]),
    };
}
