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

    /// <summary>Dropout probability applied to the pooled features before the classifier, in [0, 1). Default 0.</summary>
    public double DropRate { get; init; }

    /// <summary>
    /// Weight file (<c>.pth</c> or <c>.safetensors</c>) to load after construction, or null. The body is loaded strictly; when
    /// <see cref="NumClasses"/> differs from the file's classifier the classifier is left freshly initialised (timm's pretrained
    /// fine-tuning behaviour); 3-channel first-conv weights are adapted to <see cref="InChannels"/>.
    /// </summary>
    public string? WeightsPath { get; init; }

    /// <summary>Initialise the last BatchNorm of every residual branch to zero (torchvision's <c>zero_init_residual</c>). Default false.</summary>
    public bool ZeroInitResidual { get; init; }

    /// <summary>Checks the values that do not depend on the architecture; throws <see cref="ArgumentException"/> naming the bad option.</summary>
    public void Validate()
    {
        if (NumClasses < 0)
            throw new ArgumentOutOfRangeException(nameof(NumClasses), NumClasses, $"{nameof(NumClasses)} must be >= 0 (0 = no classifier, pooled features out); got {NumClasses}.");
        if (InChannels < 1)
            throw new ArgumentOutOfRangeException(nameof(InChannels), InChannels, $"{nameof(InChannels)} must be >= 1; got {InChannels}.");
        if (double.IsNaN(DropRate) || DropRate < 0 || DropRate >= 1)
            throw new ArgumentOutOfRangeException(nameof(DropRate), DropRate, $"{nameof(DropRate)} must be in [0, 1); got {DropRate}.");
        if (WeightsPath is not null && !File.Exists(WeightsPath))
            throw new ArgumentException($"{nameof(WeightsPath)} '{WeightsPath}' does not exist.", nameof(WeightsPath));
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
