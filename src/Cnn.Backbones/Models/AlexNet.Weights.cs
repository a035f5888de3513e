using Cnn.Backbones.Weights.Catalog;
using static Cnn.Backbones.Weights.Catalog.TorchvisionWeights;

namespace Cnn.Backbones.Models;

public sealed partial class AlexNetFamily
{
    /// <summary>
    /// torchvision's pretrained weights of the AlexNet architectures, by model name: each <c>WeightsEnum</c>
    /// (e.g. <c>AlexNet_Weights</c>) with its members' file URL, evaluation transforms, <c>num_params</c>, ImageNet-1K acc@1/acc@5
    /// and recipe, timm's tag where timm publishes the same file, and which member <c>DEFAULT</c> is. Facts from torchvision's
    /// <c>torchvision/models/*.py</c>; the tests compare them with torchvision's own and the parameter counts with the built models.
    /// </summary>
    internal static IReadOnlyDictionary<string, TorchvisionWeightsEnum> WeightsEnums { get; } = new Dictionary<string, TorchvisionWeightsEnum>
    {
        ["alexnet"] = new("IMAGENET1K_V1",
        [
            ImageNet1K("IMAGENET1K_V1", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", new(224, 256), 61_100_840, 56.522, 79.066,
                "https://github.com/pytorch/vision/tree/main/references/classification#alexnet-and-vgg"),
        ]),
    };
}
