using Cnn.Backbones.Models;
using Microsoft.ML;

namespace Cnn.MLNet;

public static partial class CnnTrainer
{
    /// <summary>LeNet-5 (LeCun et al. 1998; <c>lenet5</c>): 32×32 input, 28×28 padded; no pretrained weights. Set
    /// <c>Model.InChannels</c> = 1 (<see cref="CnnTrainerOptions.Model"/>) for grey images.</summary>
    public static CnnEstimator LeNet5(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(Cnn.Backbones.Models.LeNet5.ModelName, options, mlContext);

    /// <summary>AlexNet (torchvision <c>alexnet</c>).</summary>
    public static CnnEstimator AlexNet(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(Cnn.Backbones.Models.AlexNet.ModelName, options, mlContext);

    /// <summary>VGG-11 (torchvision <c>vgg11</c>).</summary>
    public static CnnEstimator Vgg11(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(VggFamily.Names.Vgg11, options, mlContext);

    /// <summary>VGG-11 with BatchNorm (torchvision <c>vgg11_bn</c>).</summary>
    public static CnnEstimator Vgg11Bn(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(VggFamily.Names.Vgg11Bn, options, mlContext);

    /// <summary>VGG-13 (torchvision <c>vgg13</c>).</summary>
    public static CnnEstimator Vgg13(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(VggFamily.Names.Vgg13, options, mlContext);

    /// <summary>VGG-13 with BatchNorm (torchvision <c>vgg13_bn</c>).</summary>
    public static CnnEstimator Vgg13Bn(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(VggFamily.Names.Vgg13Bn, options, mlContext);

    /// <summary>VGG-16 (torchvision <c>vgg16</c>).</summary>
    public static CnnEstimator Vgg16(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(VggFamily.Names.Vgg16, options, mlContext);

    /// <summary>VGG-16 with BatchNorm (torchvision <c>vgg16_bn</c>).</summary>
    public static CnnEstimator Vgg16Bn(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(VggFamily.Names.Vgg16Bn, options, mlContext);

    /// <summary>VGG-19 (torchvision <c>vgg19</c>).</summary>
    public static CnnEstimator Vgg19(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(VggFamily.Names.Vgg19, options, mlContext);

    /// <summary>VGG-19 with BatchNorm (torchvision <c>vgg19_bn</c>).</summary>
    public static CnnEstimator Vgg19Bn(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(VggFamily.Names.Vgg19Bn, options, mlContext);

    /// <summary>GoogLeNet / Inception v1 (torchvision <c>googlenet</c>, without auxiliary heads, input re-normalised as torchvision's pretrained model).</summary>
    public static CnnEstimator GoogLeNet(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(Cnn.Backbones.Models.GoogLeNet.ModelName, options, mlContext);

    /// <summary>Inception v3 (torchvision <c>inception_v3</c>, 299×299, with the auxiliary head weighted 0.4 in training).</summary>
    public static CnnEstimator InceptionV3(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(Cnn.Backbones.Models.InceptionV3.ModelName, options, mlContext);

    /// <summary>DenseNet-121 (torchvision <c>densenet121</c>).</summary>
    public static CnnEstimator DenseNet121(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(DenseNetFamily.Names.DenseNet121, options, mlContext);

    /// <summary>DenseNet-161 (torchvision <c>densenet161</c>).</summary>
    public static CnnEstimator DenseNet161(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(DenseNetFamily.Names.DenseNet161, options, mlContext);

    /// <summary>DenseNet-169 (torchvision <c>densenet169</c>).</summary>
    public static CnnEstimator DenseNet169(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(DenseNetFamily.Names.DenseNet169, options, mlContext);

    /// <summary>DenseNet-201 (torchvision <c>densenet201</c>).</summary>
    public static CnnEstimator DenseNet201(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(DenseNetFamily.Names.DenseNet201, options, mlContext);

    /// <summary>SqueezeNet 1.0 (torchvision <c>squeezenet1_0</c>).</summary>
    public static CnnEstimator SqueezeNet1_0(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(SqueezeNetFamily.Names.SqueezeNet1_0, options, mlContext);

    /// <summary>SqueezeNet 1.1 (torchvision <c>squeezenet1_1</c>).</summary>
    public static CnnEstimator SqueezeNet1_1(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(SqueezeNetFamily.Names.SqueezeNet1_1, options, mlContext);
}
