using Cnn.Backbones.Weights.Catalog;
using static Cnn.Backbones.Weights.Catalog.TorchvisionWeights;

namespace Cnn.Backbones.Models;

public sealed partial class SqueezeNetFamily
{
    /// <summary>
    /// torchvision's pretrained weights of the SqueezeNet architectures, by model name: each <c>WeightsEnum</c>
    /// (e.g. <c>SqueezeNet1_0_Weights</c>) with its members' file URL, evaluation transforms, <c>num_params</c>, ImageNet-1K acc@1/acc@5
    /// and recipe, timm's tag where timm publishes the same file, and which member <c>DEFAULT</c> is. Facts from torchvision's
    /// <c>torchvision/models/*.py</c>; the tests compare them with torchvision's own and the parameter counts with the built models.
    /// </summary>
    internal static IReadOnlyDictionary<string, TorchvisionWeightsEnum> WeightsEnums { get; } = new Dictionary<string, TorchvisionWeightsEnum>
    {
        [SqueezeNetFamily.Names.SqueezeNet1_0] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/squeezenet1_0-b66bff10.pth", new(224, 256), 1_248_424, 58.092, 80.42,
                "https://github.com/pytorch/vision/pull/49#issuecomment-277560717"),
        ]),
        [SqueezeNetFamily.Names.SqueezeNet1_1] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth", new(224, 256), 1_235_496, 58.178, 80.624,
                "https://github.com/pytorch/vision/pull/49#issuecomment-277560717"),
        ]),
    };
}
