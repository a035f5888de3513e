using Cnn.Backbones.Models;
using Microsoft.ML;
using Cnn.MLNet.Mapping;

namespace Cnn.MLNet;

/// <summary>
/// Factories for <see cref="CnnEstimator"/>: fine-tune a registered backbone inside an ML.NET pipeline, e.g.
/// <c>pipeline.Append(CnnTrainer.ResNet50(new CnnTrainerOptions { WeightsPath = "resnet50.pth" }))</c>.
/// Pass an <see cref="MLContext"/> to receive progress through its <c>Log</c> event.
/// </summary>
public static partial class CnnTrainer
{
    /// <summary>A trainer for any registered architecture (see <c>ModelRegistry.List()</c> or <c>cnn models</c>).</summary>
    /// <exception cref="ArgumentException">The name is not registered; the message lists close matches.</exception>
    public static CnnEstimator Create(string architecture, CnnTrainerOptions? options = null, MLContext? mlContext = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(architecture);
        ModelRegistry.Get(architecture);
        options ??= new CnnTrainerOptions();
        options.Architecture = architecture;
        return new CnnEstimator(options, mlContext);
    }

    /// <summary>ResNet-18 (torchvision <c>resnet18</c>).</summary>
    public static CnnEstimator ResNet18(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(ResNetFamily.Names.ResNet18, options, mlContext);

    /// <summary>ResNet-34 (torchvision <c>resnet34</c>).</summary>
    public static CnnEstimator ResNet34(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(ResNetFamily.Names.ResNet34, options, mlContext);

    /// <summary>ResNet-50 (torchvision <c>resnet50</c>).</summary>
    public static CnnEstimator ResNet50(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(ResNetFamily.Names.ResNet50, options, mlContext);

    /// <summary>ResNet-101 (torchvision <c>resnet101</c>).</summary>
    public static CnnEstimator ResNet101(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(ResNetFamily.Names.ResNet101, options, mlContext);

    /// <summary>ResNet-152 (torchvision <c>resnet152</c>).</summary>
    public static CnnEstimator ResNet152(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(ResNetFamily.Names.ResNet152, options, mlContext);

    /// <summary>ResNeXt-50 32×4d (torchvision <c>resnext50_32x4d</c>).</summary>
    public static CnnEstimator ResNeXt50_32x4d(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(ResNetFamily.Names.ResNeXt50_32x4d, options, mlContext);

    /// <summary>ResNeXt-101 32×8d (torchvision <c>resnext101_32x8d</c>).</summary>
    public static CnnEstimator ResNeXt101_32x8d(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(ResNetFamily.Names.ResNeXt101_32x8d, options, mlContext);

    /// <summary>ResNeXt-101 64×4d (torchvision <c>resnext101_64x4d</c>).</summary>
    public static CnnEstimator ResNeXt101_64x4d(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(ResNetFamily.Names.ResNeXt101_64x4d, options, mlContext);

    /// <summary>Wide ResNet-50-2 (torchvision <c>wide_resnet50_2</c>).</summary>
    public static CnnEstimator WideResNet50_2(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(ResNetFamily.Names.WideResNet50_2, options, mlContext);

    /// <summary>Wide ResNet-101-2 (torchvision <c>wide_resnet101_2</c>).</summary>
    public static CnnEstimator WideResNet101_2(CnnTrainerOptions? options = null, MLContext? mlContext = null) => Create(ResNetFamily.Names.WideResNet101_2, options, mlContext);
}
