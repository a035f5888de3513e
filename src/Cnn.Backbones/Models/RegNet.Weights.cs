using Cnn.Backbones.Weights.Catalog;
using static Cnn.Backbones.Weights.Catalog.TorchvisionWeights;

namespace Cnn.Backbones.Models;

public sealed partial class RegNetFamily
{
    /// <summary>
    /// torchvision's pretrained weights of the RegNet architectures, by model name: each <c>WeightsEnum</c>
    /// (e.g. <c>RegNet_Y_16GF_Weights</c>) with its members' file URL, evaluation transforms, <c>num_params</c>, ImageNet-1K acc@1/acc@5
    /// and recipe, timm's tag where timm publishes the same file, and which member <c>DEFAULT</c> is. Facts from torchvision's
    /// <c>torchvision/models/*.py</c>; the tests compare them with torchvision's own and the parameter counts with the built models.
    /// </summary>
    internal static IReadOnlyDictionary<string, TorchvisionWeightsEnum> WeightsEnums { get; } = new Dictionary<string, TorchvisionWeightsEnum>
    {
        [RegNetFamily.Names.RegNetY400MF] = new("IMAGENET1K_V2",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_y_400mf-c65dace8.pth", new(224, 256), 4_344_144, 74.046, 91.716,
                "https://github.com/pytorch/vision/tree/main/references/classification#small-models"),
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_y_400mf-e6988f5f.pth", new(224, 232), 4_344_144, 75.804, 92.742,
                "https://github.com/pytorch/vision/issues/3995#new-recipe", "tv2_in1k"),
        ]),
        [RegNetFamily.Names.RegNetY800MF] = new("IMAGENET1K_V2",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_y_800mf-1b27b58c.pth", new(224, 256), 6_432_512, 76.42, 93.136,
                "https://github.com/pytorch/vision/tree/main/references/classification#small-models"),
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_y_800mf-58fc7688.pth", new(224, 232), 6_432_512, 78.828, 94.502,
                "https://github.com/pytorch/vision/issues/3995#new-recipe", "tv2_in1k"),
        ]),
        [RegNetFamily.Names.RegNetY1_6GF] = new("IMAGENET1K_V2",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_y_1_6gf-b11a554e.pth", new(224, 256), 11_202_430, 77.95, 93.966,
                "https://github.com/pytorch/vision/tree/main/references/classification#small-models"),
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_y_1_6gf-0d7bc02a.pth", new(224, 232), 11_202_430, 80.876, 95.444,
                "https://github.com/pytorch/vision/issues/3995#new-recipe", "tv2_in1k"),
        ]),
        [RegNetFamily.Names.RegNetY3_2GF] = new("IMAGENET1K_V2",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_y_3_2gf-b5a9779c.pth", new(224, 256), 19_436_338, 78.948, 94.576,
                "https://github.com/pytorch/vision/tree/main/references/classification#medium-models"),
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_y_3_2gf-9180c971.pth", new(224, 232), 19_436_338, 81.982, 95.972,
                "https://github.com/pytorch/vision/issues/3995#new-recipe", "tv2_in1k"),
        ]),
        [RegNetFamily.Names.RegNetY8GF] = new("IMAGENET1K_V2",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_y_8gf-d0d0e4a8.pth", new(224, 256), 39_381_472, 80.032, 95.048,
                "https://github.com/pytorch/vision/tree/main/references/classification#medium-models"),
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_y_8gf-dc2b1b54.pth", new(224, 232), 39_381_472, 82.828, 96.33,
                "https://github.com/pytorch/vision/issues/3995#new-recipe", "tv2_in1k"),
        ]),
        [RegNetFamily.Names.RegNetY16GF] = new("IMAGENET1K_V2",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_y_16gf-9e6ed7dd.pth", new(224, 256), 83_590_140, 80.424, 95.24,
                "https://github.com/pytorch/vision/tree/main/references/classification#large-models"),
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_y_16gf-3e4a00f9.pth", new(224, 232), 83_590_140, 82.886, 96.328,
                "https://github.com/pytorch/vision/issues/3995#new-recipe", "tv2_in1k"),
            ImageNet1K("IMAGENET1K_SWAG_E2E_V1", "https://download.pytorch.org/models/regnet_y_16gf_swag-43afe44d.pth", new(384, 384, "bicubic"), 83_590_140, 86.012, 98.054,
                "https://github.com/facebookresearch/SWAG", "swag_ft_in1k", license: SwagLicense),
            ImageNet1K("IMAGENET1K_SWAG_LINEAR_V1", "https://download.pytorch.org/models/regnet_y_16gf_lc_swag-f3ec0043.pth", new(224, 224, "bicubic"), 83_590_140, 83.976, 97.244,
                "https://github.com/pytorch/vision/pull/5793", "swag_lc_in1k", license: SwagLicense),
        ]),
        [RegNetFamily.Names.RegNetY32GF] = new("IMAGENET1K_V2",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_y_32gf-4dee3f7a.pth", new(224, 256), 145_046_770, 80.878, 95.34,
                "https://github.com/pytorch/vision/tree/main/references/classification#large-models"),
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_y_32gf-8db6d4b5.pth", new(224, 232), 145_046_770, 83.368, 96.498,
                "https://github.com/pytorch/vision/issues/3995#new-recipe", "tv2_in1k"),
            ImageNet1K("IMAGENET1K_SWAG_E2E_V1", "https://download.pytorch.org/models/regnet_y_32gf_swag-04fdfa75.pth", new(384, 384, "bicubic"), 145_046_770, 86.838, 98.362,
                "https://github.com/facebookresearch/SWAG", "swag_ft_in1k", license: SwagLicense),
            ImageNet1K("IMAGENET1K_SWAG_LINEAR_V1", "https://download.pytorch.org/models/regnet_y_32gf_lc_swag-e1583746.pth", new(224, 224, "bicubic"), 145_046_770, 84.622, 97.48,
                "https://github.com/pytorch/vision/pull/5793", "swag_lc_in1k", license: SwagLicense),
        ]),
        [RegNetFamily.Names.RegNetX400MF] = new("IMAGENET1K_V2",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_x_400mf-adf1edd5.pth", new(224, 256), 5_495_976, 72.834, 90.95,
                "https://github.com/pytorch/vision/tree/main/references/classification#small-models"),
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_x_400mf-62229a5f.pth", new(224, 232), 5_495_976, 74.864, 92.322,
                "https://github.com/pytorch/vision/issues/3995#new-recipe-with-fixres", "tv2_in1k"),
        ]),
        [RegNetFamily.Names.RegNetX800MF] = new("IMAGENET1K_V2",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_x_800mf-ad17e45c.pth", new(224, 256), 7_259_656, 75.212, 92.348,
                "https://github.com/pytorch/vision/tree/main/references/classification#small-models"),
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_x_800mf-94a99ebd.pth", new(224, 232), 7_259_656, 77.522, 93.826,
                "https://github.com/pytorch/vision/issues/3995#new-recipe-with-fixres", "tv2_in1k"),
        ]),
        [RegNetFamily.Names.RegNetX1_6GF] = new("IMAGENET1K_V2",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_x_1_6gf-e3633e7f.pth", new(224, 256), 9_190_136, 77.04, 93.44,
                "https://github.com/pytorch/vision/tree/main/references/classification#small-models"),
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_x_1_6gf-a12f2b72.pth", new(224, 232), 9_190_136, 79.668, 94.922,
                "https://github.com/pytorch/vision/issues/3995#new-recipe-with-fixres", "tv2_in1k"),
        ]),
        [RegNetFamily.Names.RegNetX3_2GF] = new("IMAGENET1K_V2",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_x_3_2gf-f342aeae.pth", new(224, 256), 15_296_552, 78.364, 93.992,
                "https://github.com/pytorch/vision/tree/main/references/classification#medium-models"),
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_x_3_2gf-7071aa85.pth", new(224, 232), 15_296_552, 81.196, 95.43,
                "https://github.com/pytorch/vision/issues/3995#new-recipe", "tv2_in1k"),
        ]),
        [RegNetFamily.Names.RegNetX8GF] = new("IMAGENET1K_V2",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_x_8gf-03ceed89.pth", new(224, 256), 39_572_648, 79.344, 94.686,
                "https://github.com/pytorch/vision/tree/main/references/classification#medium-models"),
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_x_8gf-2b70d774.pth", new(224, 232), 39_572_648, 81.682, 95.678,
                "https://github.com/pytorch/vision/issues/3995#new-recipe", "tv2_in1k"),
        ]),
        [RegNetFamily.Names.RegNetX16GF] = new("IMAGENET1K_V2",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_x_16gf-2007eb11.pth", new(224, 256), 54_278_536, 80.058, 94.944,
                "https://github.com/pytorch/vision/tree/main/references/classification#medium-models"),
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_x_16gf-ba3796d7.pth", new(224, 232), 54_278_536, 82.716, 96.196,
                "https://github.com/pytorch/vision/issues/3995#new-recipe", "tv2_in1k"),
        ]),
        [RegNetFamily.Names.RegNetX32GF] = new("IMAGENET1K_V2",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_x_32gf-9d47f8d0.pth", new(224, 256), 107_811_560, 80.622, 95.248,
                "https://github.com/pytorch/vision/tree/main/references/classification#large-models"),
            ImageNet1K("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_x_32gf-6eb8fdc6.pth", new(224, 232), 107_811_560, 83.014, 96.288,
                "https://github.com/pytorch/vision/issues/3995#new-recipe", "tv2_in1k"),
        ]),
    };
}
