namespace Cnn.Backbones.Models;

/// <summary>Options for creating a model through <see cref="ModelRegistry.Create"/> or a family's constructor.</summary>
public sealed record ModelOptions
{
    /// <summary>Classes of the classifier head; 0 builds no classifier (the model returns pooled features). Default 1000.</summary>
    public int NumClasses { get; init; } = 1000;

    /// <summary>Input channels of the first convolution (1 for grey images, 3 for RGB, any N). Default 3.</summary>
    public int InChannels { get; init; } = 3;

    /// <summary>
    /// Build the model as a feature extractor (timm's <c>features_only=True</c>): no pooling and no classifier;
    /// <see cref="Backbone.ForwardStages"/> returns the maps named by <see cref="OutIndices"/> and <c>forward</c> returns the last
    /// feature map. Default false.
    /// </summary>
    public bool FeaturesOnly { get; init; }

    /// <summary>
    /// Indices into <see cref="Backbone.FeatureInfo"/> of the maps <see cref="Backbone.ForwardStages"/> returns, ascending.
    /// Null (default) selects every stage. Negative indices count from the end (-1 = last stage), as in timm.
    /// </summary>
    public IReadOnlyList<int>? OutIndices { get; init; }

    /// <summary>
    /// Dropout probability applied to the pooled features before the classifier, in [0, 1). Null (default) uses the architecture's
    /// own value: torchvision's per-variant dropout (0.5 for AlexNet, VGG, SqueezeNet and Inception v3, 0.2 for GoogLeNet,
    /// MobileNet and EfficientNet-B0/B1, up to 0.5 for B6/B7), 0 for architectures without one (ResNet, RegNet, ConvNeXt, ViT).
    /// </summary>
    public double? DropRate { get; init; }

    /// <summary>
    /// Maximum stochastic-depth (drop-path) probability, scaled linearly over the blocks as torchvision does, for architectures
    /// with residual stochastic depth (EfficientNet, ConvNeXt); in [0, 1). Null (default) uses torchvision's value for the variant
    /// (0.2 for EfficientNet, 0.1–0.5 for ConvNeXt). Active only in training mode.
    /// </summary>
    public double? DropPathRate { get; init; }

    /// <summary>
    /// Input image size (square). The Vision Transformer's position embedding is built for it (weights made for another size are
    /// resampled when loaded); convolutional networks accept any size, and this size is what the preprocessing of Cnn.MLNet
    /// resizes and crops images to. Null (default) uses the pretrained configuration's size.
    /// </summary>
    public int? ImageSize { get; init; }

    /// <summary>
    /// Global pooling before the head, timm's <c>global_pool</c>. Null uses the model's default. The values a model accepts are its
    /// family's (<see cref="ModelCapabilities.GlobalPools"/> on <see cref="ModelDefinition.Capabilities"/>): convolutional networks
    /// accept <c>"avg"</c>; the Vision Transformer <c>"token"</c> (the class token, torchvision's and its default) or <c>"avg"</c>
    /// (mean of the patch tokens).
    /// </summary>
    public string? GlobalPool { get; init; }

    /// <summary>
    /// Blocks per stage replacing the architecture's own (torchvision's <c>ResNet(block, layers)</c> argument), e.g.
    /// <c>[2, 2, 2, 3]</c> for a ResNet-18 with three blocks in <c>layer4</c>. Null (default) keeps the architecture's. Only the ResNet
    /// families accept it (<see cref="ModelCapabilities.BlockCounts"/>); the others reject it.
    /// </summary>
    public IReadOnlyList<int>? BlockCounts { get; init; }

    /// <summary>
    /// Build the auxiliary classifiers of GoogLeNet (<c>aux1</c>, <c>aux2</c>) and Inception v3 (<c>AuxLogits</c>), torchvision's
    /// <c>aux_logits</c>. They only run in training mode, through <see cref="Backbone.ForwardTrain"/>. Null (default) follows
    /// torchvision's pretrained models: off for GoogLeNet (its 6,624,904-parameter model), on for Inception v3. Only families
    /// with auxiliary classifiers accept it (<see cref="ModelCapabilities.AuxLogits"/>); set on another model it is an error.
    /// </summary>
    public bool? AuxLogits { get; init; }

    /// <summary>
    /// Loss weight of each auxiliary classifier in <see cref="Backbone.ForwardTrain"/>'s output; null (default) uses torchvision's
    /// reference training recipe: 0.3 for each GoogLeNet head, 0.4 for Inception v3's. Accepted where <see cref="AuxLogits"/> is.
    /// </summary>
    public double? AuxLossWeight { get; init; }

    /// <summary>
    /// GoogLeNet / Inception v3 only (torchvision's <c>transform_input</c>): re-normalise an ImageNet-normalised 3-channel input to
    /// mean = std = 0.5 per channel inside the model, which torchvision's pretrained weights for both expect. Null (default) means
    /// true for 3-channel models, so a model built by name computes the same function whether it is trained, saved or reloaded;
    /// set false for torchvision's from-scratch default. True with <see cref="InChannels"/> ≠ 3 is an error, and so is setting it on
    /// a family that does not declare it (<see cref="ModelCapabilities.TransformInput"/>).
    /// </summary>
    public bool? TransformInput { get; init; }

    /// <summary>
    /// Weight file (<c>.pth</c> or <c>.safetensors</c>) to load after construction, or null. The body is loaded strictly; when
    /// <see cref="NumClasses"/> differs from the file's classifier the classifier is left freshly initialised (timm's pretrained
    /// fine-tuning behaviour); 3-channel first-conv weights are adapted to <see cref="InChannels"/>.
    /// </summary>
    public string? WeightsPath { get; init; }

    /// <summary>
    /// Pretrained weights to start from, asked for as torchvision, timm and the Hugging Face hub name them: <c>"DEFAULT"</c>, an
    /// entry of the model's catalog (<c>"IMAGENET1K_V2"</c>; see <see cref="ModelDefinition.Weights"/>), timm's name for the same file
    /// (<c>"resnet50.tv2_in1k"</c>), a hub repository (<c>"hf-hub:timm/resnet50.a1_in1k"</c>, optionally <c>@revision</c>), or a
    /// weights file's path. Names are downloaded once into PyTorch's and the hub's caches and hash-checked
    /// (<see cref="Weights.PretrainedWeights"/>); preprocessing then follows the weights' configuration unless overridden. Loaded as
    /// <see cref="WeightsPath"/> is; set one of the two, not both. Null (default): no weights.
    /// </summary>
    public string? Weights { get; init; }

    /// <summary>
    /// Initialise the last BatchNorm of every residual branch to zero (torchvision's <c>zero_init_residual</c>). Default false; true
    /// is an error on a family that does not declare it (<see cref="ModelCapabilities.ZeroInitResidual"/>).
    /// </summary>
    public bool ZeroInitResidual { get; init; }

    /// <summary>Checks the values that do not depend on the architecture; throws <see cref="ArgumentException"/> naming the bad option,
    /// or <see cref="FileNotFoundException"/> when <see cref="WeightsPath"/> does not exist.</summary>
    public void Validate()
    {
        if (NumClasses < 0)
            throw new ArgumentOutOfRangeException(nameof(NumClasses), NumClasses, $"{nameof(NumClasses)} must be >= 0 (0 = no classifier, pooled features out); got {NumClasses}.");
        if (InChannels < 1)
            throw new ArgumentOutOfRangeException(nameof(InChannels), InChannels, $"{nameof(InChannels)} must be >= 1; got {InChannels}.");
        if (DropRate is { } drop && (double.IsNaN(drop) || drop < 0 || drop >= 1))
            throw new ArgumentOutOfRangeException(nameof(DropRate), DropRate, $"{nameof(DropRate)} must be in [0, 1) or null (the architecture's default); got {DropRate}.");
        if (DropPathRate is { } dropPath && (double.IsNaN(dropPath) || dropPath < 0 || dropPath >= 1))
            throw new ArgumentOutOfRangeException(nameof(DropPathRate), DropPathRate, $"{nameof(DropPathRate)} must be in [0, 1) or null (the architecture's default); got {DropPathRate}.");
        if (ImageSize is < 1)
            throw new ArgumentOutOfRangeException(nameof(ImageSize), ImageSize, $"{nameof(ImageSize)} must be >= 1 or null; got {ImageSize}.");
        if (BlockCounts is { } counts && (counts.Count == 0 || counts.Any(n => n < 1)))
            throw new ArgumentException($"{nameof(BlockCounts)} must be null or block counts >= 1 per stage; got [{string.Join(", ", counts)}].", nameof(BlockCounts));
        if (AuxLossWeight is { } w && (!double.IsFinite(w) || w < 0))
            throw new ArgumentOutOfRangeException(nameof(AuxLossWeight), w, $"{nameof(AuxLossWeight)} must be a finite number >= 0; got {w}.");
        if (TransformInput == true && InChannels != 3)
            throw new ArgumentException($"{nameof(TransformInput)} re-normalises RGB input and needs {nameof(InChannels)} = 3; got {InChannels}.", nameof(TransformInput));
        if (Weights is not null && WeightsPath is not null)
            throw new ArgumentException($"Set {nameof(Weights)} (a name such as \"IMAGENET1K_V2\", an hf-hub: name or a path) or {nameof(WeightsPath)} (a file), not both; got {nameof(Weights)} = \"{Weights}\" and {nameof(WeightsPath)} = \"{WeightsPath}\".", nameof(Weights));
        if (Weights is not null && string.IsNullOrWhiteSpace(Weights))
            throw new ArgumentException($"{nameof(Weights)} is empty: give \"DEFAULT\", a weights name such as \"IMAGENET1K_V2\", an hf-hub: name or a file path, or leave it null.", nameof(Weights));
        if (WeightsPath is not null && !File.Exists(WeightsPath))
            throw new FileNotFoundException($"{nameof(WeightsPath)}: weights file '{WeightsPath}' does not exist. Give the path of a .pth or .safetensors file.", WeightsPath);
    }

    /// <summary>
    /// Resolves <see cref="OutIndices"/> against a model with <paramref name="stageCount"/> feature stages: null gives all stages,
    /// negative indices count from the end. Throws <see cref="ArgumentException"/> for out-of-range, repeated or unordered indices.
    /// </summary>
    /// <param name="stageCount">Number of entries in the model's feature info.</param>
    public IReadOnlyList<int> ResolveOutIndices(int stageCount)
    {
        if (OutIndices is null) return Enumerable.Range(0, stageCount).ToArray();
        if (OutIndices.Count == 0)
            throw new ArgumentException($"{nameof(OutIndices)} must name at least one stage (valid: 0..{stageCount - 1}, or null for all).", nameof(OutIndices));
        var resolved = new int[OutIndices.Count];
        for (int i = 0; i < resolved.Length; i++)
        {
            int index = OutIndices[i];
            int actual = index < 0 ? stageCount + index : index;
            if (actual < 0 || actual >= stageCount)
                throw new ArgumentOutOfRangeException(nameof(OutIndices), index, $"{nameof(OutIndices)} entry {index} is out of range: this model has {stageCount} feature stages (valid: 0..{stageCount - 1} or -{stageCount}..-1).");
            if (i > 0 && actual <= resolved[i - 1])
                throw new ArgumentException($"{nameof(OutIndices)} must be strictly ascending without repeats; got [{string.Join(", ", OutIndices)}].", nameof(OutIndices));
            resolved[i] = actual;
        }
        return resolved;
    }
}
