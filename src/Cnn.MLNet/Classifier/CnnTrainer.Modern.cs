using Cnn.Backbones.Models;
using Microsoft.ML;

namespace Cnn.MLNet;

public static partial class CnnTrainer
{
    /// <summary>MobileNetV2 (torchvision <c>mobilenet_v2</c>).</summary>
    public static CnnEstimator MobileNetV2(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(MobileNetFamily.Names.MobileNetV2, options, mlContext);

    /// <summary>MobileNetV3-Small (torchvision <c>mobilenet_v3_small</c>).</summary>
    public static CnnEstimator MobileNetV3Small(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(MobileNetFamily.Names.MobileNetV3Small, options, mlContext);

    /// <summary>MobileNetV3-Large (torchvision <c>mobilenet_v3_large</c>).</summary>
    public static CnnEstimator MobileNetV3Large(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(MobileNetFamily.Names.MobileNetV3Large, options, mlContext);

    /// <summary>EfficientNet-B0 (torchvision <c>efficientnet_b0</c>).</summary>
    public static CnnEstimator EfficientNetB0(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(EfficientNetFamily.Names.EfficientNetB0, options, mlContext);

    /// <summary>EfficientNet-B1 (torchvision <c>efficientnet_b1</c>).</summary>
    public static CnnEstimator EfficientNetB1(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(EfficientNetFamily.Names.EfficientNetB1, options, mlContext);

    /// <summary>EfficientNet-B2 (torchvision <c>efficientnet_b2</c>).</summary>
    public static CnnEstimator EfficientNetB2(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(EfficientNetFamily.Names.EfficientNetB2, options, mlContext);

    /// <summary>EfficientNet-B3 (torchvision <c>efficientnet_b3</c>).</summary>
    public static CnnEstimator EfficientNetB3(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(EfficientNetFamily.Names.EfficientNetB3, options, mlContext);

    /// <summary>EfficientNet-B4 (torchvision <c>efficientnet_b4</c>).</summary>
    public static CnnEstimator EfficientNetB4(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(EfficientNetFamily.Names.EfficientNetB4, options, mlContext);

    /// <summary>EfficientNet-B5 (torchvision <c>efficientnet_b5</c>).</summary>
    public static CnnEstimator EfficientNetB5(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(EfficientNetFamily.Names.EfficientNetB5, options, mlContext);

    /// <summary>EfficientNet-B6 (torchvision <c>efficientnet_b6</c>).</summary>
    public static CnnEstimator EfficientNetB6(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(EfficientNetFamily.Names.EfficientNetB6, options, mlContext);

    /// <summary>EfficientNet-B7 (torchvision <c>efficientnet_b7</c>).</summary>
    public static CnnEstimator EfficientNetB7(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(EfficientNetFamily.Names.EfficientNetB7, options, mlContext);

    /// <summary>EfficientNetV2-S (torchvision <c>efficientnet_v2_s</c>).</summary>
    public static CnnEstimator EfficientNetV2S(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(EfficientNetFamily.Names.EfficientNetV2S, options, mlContext);

    /// <summary>EfficientNetV2-M (torchvision <c>efficientnet_v2_m</c>).</summary>
    public static CnnEstimator EfficientNetV2M(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(EfficientNetFamily.Names.EfficientNetV2M, options, mlContext);

    /// <summary>EfficientNetV2-L (torchvision <c>efficientnet_v2_l</c>).</summary>
    public static CnnEstimator EfficientNetV2L(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(EfficientNetFamily.Names.EfficientNetV2L, options, mlContext);

    /// <summary>ConvNeXt-Tiny (torchvision <c>convnext_tiny</c>).</summary>
    public static CnnEstimator ConvNeXtTiny(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(ConvNeXtFamily.Names.ConvNeXtTiny, options, mlContext);

    /// <summary>ConvNeXt-Small (torchvision <c>convnext_small</c>).</summary>
    public static CnnEstimator ConvNeXtSmall(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(ConvNeXtFamily.Names.ConvNeXtSmall, options, mlContext);

    /// <summary>ConvNeXt-Base (torchvision <c>convnext_base</c>).</summary>
    public static CnnEstimator ConvNeXtBase(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(ConvNeXtFamily.Names.ConvNeXtBase, options, mlContext);

    /// <summary>ConvNeXt-Large (torchvision <c>convnext_large</c>).</summary>
    public static CnnEstimator ConvNeXtLarge(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(ConvNeXtFamily.Names.ConvNeXtLarge, options, mlContext);

    /// <summary>RegNetY-400MF (torchvision <c>regnet_y_400mf</c>).</summary>
    public static CnnEstimator RegNetY400MF(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(RegNetFamily.Names.RegNetY400MF, options, mlContext);

    /// <summary>RegNetY-800MF (torchvision <c>regnet_y_800mf</c>).</summary>
    public static CnnEstimator RegNetY800MF(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(RegNetFamily.Names.RegNetY800MF, options, mlContext);

    /// <summary>RegNetY-1.6GF (torchvision <c>regnet_y_1_6gf</c>).</summary>
    public static CnnEstimator RegNetY1_6GF(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(RegNetFamily.Names.RegNetY1_6GF, options, mlContext);

    /// <summary>RegNetY-3.2GF (torchvision <c>regnet_y_3_2gf</c>).</summary>
    public static CnnEstimator RegNetY3_2GF(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(RegNetFamily.Names.RegNetY3_2GF, options, mlContext);

    /// <summary>RegNetY-8GF (torchvision <c>regnet_y_8gf</c>).</summary>
    public static CnnEstimator RegNetY8GF(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(RegNetFamily.Names.RegNetY8GF, options, mlContext);

    /// <summary>RegNetY-16GF (torchvision <c>regnet_y_16gf</c>).</summary>
    public static CnnEstimator RegNetY16GF(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(RegNetFamily.Names.RegNetY16GF, options, mlContext);

    /// <summary>RegNetY-32GF (torchvision <c>regnet_y_32gf</c>).</summary>
    public static CnnEstimator RegNetY32GF(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(RegNetFamily.Names.RegNetY32GF, options, mlContext);

    /// <summary>RegNetX-400MF (torchvision <c>regnet_x_400mf</c>).</summary>
    public static CnnEstimator RegNetX400MF(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(RegNetFamily.Names.RegNetX400MF, options, mlContext);

    /// <summary>RegNetX-800MF (torchvision <c>regnet_x_800mf</c>).</summary>
    public static CnnEstimator RegNetX800MF(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(RegNetFamily.Names.RegNetX800MF, options, mlContext);

    /// <summary>RegNetX-1.6GF (torchvision <c>regnet_x_1_6gf</c>).</summary>
    public static CnnEstimator RegNetX1_6GF(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(RegNetFamily.Names.RegNetX1_6GF, options, mlContext);

    /// <summary>RegNetX-3.2GF (torchvision <c>regnet_x_3_2gf</c>).</summary>
    public static CnnEstimator RegNetX3_2GF(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(RegNetFamily.Names.RegNetX3_2GF, options, mlContext);

    /// <summary>RegNetX-8GF (torchvision <c>regnet_x_8gf</c>).</summary>
    public static CnnEstimator RegNetX8GF(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(RegNetFamily.Names.RegNetX8GF, options, mlContext);

    /// <summary>RegNetX-16GF (torchvision <c>regnet_x_16gf</c>).</summary>
    public static CnnEstimator RegNetX16GF(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(RegNetFamily.Names.RegNetX16GF, options, mlContext);

    /// <summary>RegNetX-32GF (torchvision <c>regnet_x_32gf</c>).</summary>
    public static CnnEstimator RegNetX32GF(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(RegNetFamily.Names.RegNetX32GF, options, mlContext);

    /// <summary>ViT-B/16 (torchvision <c>vit_b_16</c>).</summary>
    public static CnnEstimator VitB16(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(VisionTransformerFamily.Names.VitB16, options, mlContext);

    /// <summary>ViT-B/32 (torchvision <c>vit_b_32</c>).</summary>
    public static CnnEstimator VitB32(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(VisionTransformerFamily.Names.VitB32, options, mlContext);

    /// <summary>ViT-L/16 (torchvision <c>vit_l_16</c>).</summary>
    public static CnnEstimator VitL16(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(VisionTransformerFamily.Names.VitL16, options, mlContext);

    /// <summary>ViT-L/32 (torchvision <c>vit_l_32</c>).</summary>
    public static CnnEstimator VitL32(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(VisionTransformerFamily.Names.VitL32, options, mlContext);

    /// <summary>SE-ResNet-50 (timm <c>seresnet50</c>).</summary>
    public static CnnEstimator SeResNet50(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(SeResNetFamily.Names.SeResNet50, options, mlContext);

    /// <summary>SE-ResNet-101 (timm <c>seresnet101</c>).</summary>
    public static CnnEstimator SeResNet101(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(SeResNetFamily.Names.SeResNet101, options, mlContext);
}
