using Cnn.Backbones.Models;
using Cnn.MLNet.Networks;

namespace Cnn.MLNet.Features;

/// <summary>Options of <see cref="CnnFeatureEstimator"/>: which backbone and weights turn images into feature vectors.</summary>
public sealed class CnnFeatureOptions
{
    /// <summary>Registered architecture (e.g. <c>resnet50</c>). Default <see cref="CnnTrainerOptions.DefaultArchitecture"/> (resnet18).</summary>
    public string Architecture { get; set; } = CnnTrainerOptions.DefaultArchitecture;

    /// <summary>
    /// How the backbone is built: <see cref="ModelOptions.WeightsPath"/> (<c>.pth</c>/<c>.safetensors</c>; the body is loaded
    /// strictly, a classifier of another size is ignored; null: random init), <see cref="ModelOptions.InChannels"/> (3 = RGB,
    /// 1 = grayscale), <see cref="ModelOptions.ImageSize"/> (square input size; null = the pretrained configuration's),
    /// <see cref="ModelOptions.GlobalPool"/>, … Default: 1000 classes, 3 channels.
    /// </summary>
    public ModelOptions Model { get; set; } = new();

    /// <summary>Image column: LoadImages output, LoadRawImageBytes output or a text column of paths. Default <c>Image</c>.</summary>
    public string ImageColumnName { get; set; } = "Image";

    /// <summary>Output column of the pooled pre-logits vector (length = the backbone's NumFeatures). Default <c>Features</c>.</summary>
    public string OutputColumnName { get; set; } = "Features";

    /// <summary>
    /// Stage maps to add as extra columns (indices into the backbone's FeatureInfo, as timm's <c>out_indices</c>); each map is
    /// a C×H×W float tensor column named <c>{OutputColumnName}.stage{index}</c> (e.g. <c>Features.stage3</c>, ResNet's layer3). Default none.
    /// </summary>
    public IReadOnlyList<int>? StageIndices { get; set; }

    /// <summary>Centre-crop fraction; null uses the pretrained configuration's.</summary>
    public double? CropPct { get; set; }

    /// <summary>Normalisation mean per channel; null uses the pretrained configuration's.</summary>
    public IReadOnlyList<float>? Mean { get; set; }

    /// <summary>Normalisation standard deviation per channel; null uses the pretrained configuration's.</summary>
    public IReadOnlyList<float>? Std { get; set; }

    /// <summary>Images per forward pass. Default 32.</summary>
    public int BatchSize { get; set; } = 32;

    /// <summary>Where the network runs. Default <see cref="CnnDevice.Auto"/>.</summary>
    public CnnDevice Device { get; set; } = CnnDevice.Auto;

    /// <summary>Arithmetic of the forward passes. Default <see cref="CnnPrecision.Float32"/>; <see cref="CnnPrecision.Auto"/> picks bfloat16 where the CPU has native bfloat16.</summary>
    public CnnPrecision Precision { get; set; } = CnnPrecision.Float32;

    /// <summary>Memory layout of the activations. Default <see cref="CnnMemoryFormat.Contiguous"/>; <see cref="CnnMemoryFormat.Auto"/> picks channels-last on the CPU for the convolutional families that ran faster so.</summary>
    public CnnMemoryFormat MemoryFormat { get; set; } = CnnMemoryFormat.Contiguous;

    /// <summary>
    /// What runs the network. Default <see cref="CnnInferenceEngine.Auto"/>: on the CPU in float32, the faster of TorchSharp and
    /// ONNX Runtime as measured on the first batch of at least 8 images (logged to the <c>MLContext</c>), else TorchSharp; stage maps
    /// always come from TorchSharp. <see cref="CnnInferenceEngine.TorchSharp"/> or <see cref="CnnInferenceEngine.OnnxRuntime"/>
    /// (float32 on the CPU, pooled features only) fix the engine.
    /// </summary>
    public CnnInferenceEngine Engine { get; set; } = CnnInferenceEngine.Auto;

    /// <summary>The network these options build.</summary>
    /// <exception cref="ArgumentException">Unknown architecture or invalid model or preprocessing options.</exception>
    /// <exception cref="FileNotFoundException">The weights file does not exist.</exception>
    public NetworkSpec ToNetworkSpec() => NetworkSpec.For(Architecture, Model ?? throw new ArgumentNullException(nameof(Model)), Mean, Std, CropPct);

    /// <summary>Checks the values; throws <see cref="ArgumentOutOfRangeException"/> naming the option.</summary>
    /// <exception cref="FileNotFoundException">The weights file does not exist.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Architecture)) throw new ArgumentOutOfRangeException(nameof(Architecture), "CnnFeatureOptions.Architecture must name a registered architecture.");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "CnnFeatureOptions.BatchSize must be >= 1.");
        if (Model?.ImageSize is < 8) throw new ArgumentOutOfRangeException(nameof(Model.ImageSize), Model.ImageSize, "CnnFeatureOptions.Model.ImageSize must be >= 8 or null.");
        if (CropPct is not null && !(CropPct > 0 && CropPct <= 1)) throw new ArgumentOutOfRangeException(nameof(CropPct), CropPct, "CnnFeatureOptions.CropPct must be in (0, 1].");
        if (!Enum.IsDefined(MemoryFormat)) throw new ArgumentOutOfRangeException(nameof(MemoryFormat), MemoryFormat, "CnnFeatureOptions.MemoryFormat must be Auto, Contiguous or ChannelsLast.");
        Networks.ComputeSelection.Validate(Precision, Device, nameof(CnnFeatureOptions));
        Networks.ComputeSelection.ValidateEngine(Engine, Precision, Device, nameof(CnnFeatureOptions));
        if (Engine == CnnInferenceEngine.OnnxRuntime && StageIndices is { Count: > 0 })
            throw new ArgumentOutOfRangeException(nameof(StageIndices), "CnnFeatureOptions.StageIndices: stage maps come from the TorchSharp engine only; set Engine = TorchSharp or leave StageIndices empty.");
        ToNetworkSpec();
    }
}
