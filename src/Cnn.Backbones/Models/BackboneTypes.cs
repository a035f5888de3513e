using static TorchSharp.torch;

namespace Cnn.Backbones.Models;

/// <summary>
/// One feature map a backbone can return, as timm's <c>feature_info</c> reports it.
/// </summary>
/// <param name="NumChannels">Channels of the map.</param>
/// <param name="Reduction">Spatial reduction relative to the input (total stride), e.g. 32 for ResNet's last stage.</param>
/// <param name="ModuleName">Name of the module whose output the map is (e.g. <c>act1</c>, <c>layer4</c>).</param>
public sealed record FeatureInfo(int NumChannels, int Reduction, string ModuleName);

/// <summary>Input size a configuration expects: channels, height and width.</summary>
/// <param name="Channels">Input channels.</param>
/// <param name="Height">Input height in pixels.</param>
/// <param name="Width">Input width in pixels.</param>
public readonly record struct InputSize(int Channels, int Height, int Width);

/// <summary>
/// How pretrained weights for a model were made and must be fed, in the spirit of timm's <c>pretrained_cfg</c>.
/// </summary>
/// <param name="InputSize">Evaluation input size (C, H, W).</param>
/// <param name="Mean">Per-channel normalisation mean (applied after scaling pixels to [0, 1]).</param>
/// <param name="Std">Per-channel normalisation standard deviation.</param>
/// <param name="CropPct">Centre-crop fraction: resize the shorter side to <c>H / CropPct</c>, then crop H×W.</param>
/// <param name="Interpolation">Resize interpolation, <c>"bilinear"</c> or <c>"bicubic"</c>.</param>
/// <param name="FirstConv">Module name of the first convolution (its weight is adapted when the input channel count differs).</param>
/// <param name="Classifier">Module name of the classifier head (dropped or replaced when the class count differs).</param>
/// <param name="NumClasses">Number of classes of the pretrained classifier.</param>
/// <param name="Tag">Name of the weights this configuration describes, e.g. <c>"torchvision IMAGENET1K_V1"</c>.</param>
public sealed record PretrainedConfig(
    InputSize InputSize,
    IReadOnlyList<double> Mean,
    IReadOnlyList<double> Std,
    double CropPct,
    string Interpolation,
    string FirstConv,
    string Classifier,
    int NumClasses,
    string Tag)
{
    /// <summary>ImageNet mean (0.485, 0.456, 0.406).</summary>
    public static IReadOnlyList<double> ImageNetMean { get; } = [0.485, 0.456, 0.406];

    /// <summary>ImageNet standard deviation (0.229, 0.224, 0.225).</summary>
    public static IReadOnlyList<double> ImageNetStd { get; } = [0.229, 0.224, 0.225];

    /// <summary>OpenAI CLIP's mean (0.48145466, 0.4578275, 0.40821073), which OpenCLIP's models use too.</summary>
    public static IReadOnlyList<double> ClipMean { get; } = [0.48145466, 0.4578275, 0.40821073];

    /// <summary>OpenAI CLIP's standard deviation (0.26862954, 0.26130258, 0.27577711).</summary>
    public static IReadOnlyList<double> ClipStd { get; } = [0.26862954, 0.26130258, 0.27577711];

    /// <summary>
    /// The configuration of torchvision's ImageNet classification weights: <c>ImageClassification(crop_size, resize_size)</c>
    /// with ImageNet mean/std and bilinear resizing, 3×crop×crop input and 1000 classes.
    /// </summary>
    /// <param name="cropSize">Crop size (224 for most weights).</param>
    /// <param name="resizeSize">Shorter-side resize before the crop (256 for the V1 weights).</param>
    /// <param name="firstConv">Module name of the first convolution.</param>
    /// <param name="classifier">Module name of the classifier.</param>
    /// <param name="tag">Weights name, e.g. <c>"torchvision IMAGENET1K_V1"</c>.</param>
    public static PretrainedConfig TorchvisionImageNet(int cropSize, int resizeSize, string firstConv, string classifier, string tag) =>
        new(new InputSize(3, cropSize, cropSize), ImageNetMean, ImageNetStd, (double)cropSize / resizeSize, "bilinear",
            firstConv, classifier, 1000, tag);
}

/// <summary>
/// A named group of parameters (a stage such as <c>stem</c>, <c>layer1</c> or <c>head</c>), given as parameter-name prefixes.
/// Used to freeze a model up to a stage and to give stages their own learning rates.
/// </summary>
/// <param name="Name">Stage name.</param>
/// <param name="Prefixes">Parameter-name prefixes that belong to the stage, each ending with a dot (e.g. <c>"layer1."</c>).</param>
public sealed record StageGroup(string Name, IReadOnlyList<string> Prefixes)
{
    /// <summary>Whether a parameter, buffer or module name (e.g. <c>layer1.0.bn1.weight</c> or <c>bn1</c>) lies in this stage.</summary>
    /// <param name="name">A state-dict key or a module name from <c>named_modules()</c>.</param>
    public bool Contains(string name) => Prefixes.Any(p => (name + ".").StartsWith(p, StringComparison.Ordinal));
}

/// <summary>The parameters of one stage, in state-dict order (for per-stage optimizer parameter groups).</summary>
/// <param name="Stage">The stage.</param>
/// <param name="Parameters">Its parameters with their full names.</param>
public sealed record StageParameters(StageGroup Stage, IReadOnlyList<(string Name, TorchSharp.Modules.Parameter Parameter)> Parameters);

/// <summary>An auxiliary classifier's logits and the weight of its loss in the training objective.</summary>
/// <param name="Logits">Auxiliary logits [N, classes].</param>
/// <param name="Weight">Loss weight (e.g. 0.3 for each GoogLeNet aux head).</param>
public sealed record AuxiliaryOutput(Tensor Logits, double Weight);

/// <summary>What <see cref="Backbone.ForwardTrain"/> returns: the main logits and the auxiliary outputs (often none).</summary>
/// <param name="Logits">Main logits [N, classes].</param>
/// <param name="Auxiliary">Auxiliary outputs, active only in training mode.</param>
public sealed record TrainingOutput(Tensor Logits, IReadOnlyList<AuxiliaryOutput> Auxiliary);
