namespace Cnn.Backbones.Onnx.Export;

/// <summary>What the exported graph's output is.</summary>
public enum OnnxExportOutput
{
    /// <summary>The classifier's logits, named <c>logits</c> (features when the model has no classifier).</summary>
    Logits,

    /// <summary>The softmax of the logits over classes, named <c>probabilities</c>.</summary>
    Probabilities,
}

/// <summary>How <see cref="OnnxExporter"/> writes a model.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>The input's height and width; null for the model's own (its pretrained configuration, or a ViT's built size).</summary>
    public int? ImageSize { get; init; }

    /// <summary>
    /// Symbolic height and width (the batch axis is always symbolic). Only architectures without a fixed-size part (a ViT's position
    /// embedding, VGG/AlexNet's adaptive pooling to a grid, LeNet's fully-connected layers) can; the others fail with the reason.
    /// </summary>
    public bool DynamicSize { get; init; }

    /// <summary>The graph's output: logits (default) or class probabilities.</summary>
    public OnnxExportOutput Output { get; init; } = OnnxExportOutput.Logits;

    /// <summary>
    /// Put the normalisation inside the graph: the input is then pixel values in [0, <see cref="PixelScale"/>] (ML.NET's
    /// <c>ExtractPixels</c> with its defaults gives 0–255), and the graph computes <c>(x / PixelScale − mean) / std</c> per
    /// channel. By default the input is already normalised (as timm exports), and mean/std are only recorded in the metadata.
    /// </summary>
    public bool NormalizeInside { get; init; }

    /// <summary>The unit of the input's pixel values with <see cref="NormalizeInside"/>: 255 for 0–255, 1 for [0, 1].</summary>
    public double PixelScale { get; init; } = 255;

    /// <summary>Normalisation mean per channel; null for the model's pretrained configuration's (averaged for a grey model).</summary>
    public IReadOnlyList<double>? Mean { get; init; }

    /// <summary>Normalisation standard deviation per channel; null for the configuration's.</summary>
    public IReadOnlyList<double>? Std { get; init; }

    /// <summary>Class labels in output order, written to the metadata; null to leave them out.</summary>
    public IReadOnlyList<string>? ClassLabels { get; init; }

    /// <summary>Architecture name for the metadata; null for the model's name.</summary>
    public string? Architecture { get; init; }

    /// <summary>More <c>metadata_props</c> entries (keys get the <c>cnn.</c> prefix), e.g. the preprocessing's resize and crop.</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    /// <summary>Run the exported graph in ONNX Runtime on a random batch and compare with the model (default on).</summary>
    public bool Verify { get; init; } = true;

    /// <summary>Largest accepted |ours − ONNX Runtime| relative to the largest |ONNX Runtime| output value.</summary>
    public double Tolerance { get; init; } = 1e-4;

    /// <summary>Checks the options.</summary>
    /// <exception cref="ArgumentException">The first invalid option.</exception>
    public void Validate()
    {
        if (ImageSize is < 1) throw new ArgumentOutOfRangeException(nameof(ImageSize), ImageSize, "The image size must be at least 1.");
        if (!double.IsFinite(PixelScale) || PixelScale <= 0) throw new ArgumentOutOfRangeException(nameof(PixelScale), PixelScale, "The pixel scale must be a finite number > 0.");
        if (!double.IsFinite(Tolerance) || Tolerance <= 0) throw new ArgumentOutOfRangeException(nameof(Tolerance), Tolerance, "The tolerance must be a finite number > 0.");
        if (Std is { } std && std.Any(s => !(s > 0))) throw new ArgumentException("Every std must be > 0.", nameof(Std));
        if ((Mean is null) != (Std is null)) throw new ArgumentException("Give both Mean and Std, or neither.", nameof(Mean));
        if (Mean is not null && Mean.Count != Std!.Count) throw new ArgumentException("Mean and Std need one value per channel each.", nameof(Mean));
    }
}
