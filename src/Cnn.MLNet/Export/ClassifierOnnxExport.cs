using System.Globalization;
using Cnn.Backbones.Onnx.Export;
using Cnn.MLNet.Networks;
using Cnn.MLNet.Persistence;
using Cnn.MLNet.Scoring;
using Microsoft.ML;

namespace Cnn.MLNet.Export;

/// <summary>
/// Exports the network of a fitted <see cref="CnnClassifierTransformer"/> (or of the classifier stage of a pipeline saved by
/// <c>cnn train</c>) as ONNX with <see cref="OnnxExporter"/>: at the input size its preprocessing makes, with its class labels,
/// mean/std, channels, resize and crop in the metadata. Resizing and cropping stay outside the graph; with
/// <see cref="OnnxExportOptions.NormalizeInside"/> ML.NET's <c>LoadImages → ExtractPixels → ApplyOnnxModel</c> feeds it
/// directly for images already at the input size.
/// </summary>
public static class ClassifierOnnxExport
{
    /// <summary>Exports <paramref name="classifier"/>'s network.</summary>
    /// <param name="classifier">A fitted classifier.</param>
    /// <param name="options">Export options; the input size, mean/std, labels and architecture default to the classifier's.</param>
    /// <exception cref="NotSupportedException">The network cannot be exported (the message names the module or the reason).</exception>
    /// <exception cref="OnnxExportException">The exported graph does not reproduce the network in ONNX Runtime.</exception>
    public static OnnxExportResult Export(CnnClassifierTransformer classifier, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(classifier);
        return Export(classifier.Network, classifier.ClassNames, options);
    }

    /// <summary>Exports <paramref name="network"/> at the input size of its preprocessing.</summary>
    /// <param name="network">The network.</param>
    /// <param name="classLabels">Class names in output order for the metadata, or null.</param>
    /// <param name="options">Export options; the input size, mean/std and architecture default to the network's.</param>
    /// <exception cref="NotSupportedException">The network cannot be exported (the message names the module or the reason).</exception>
    /// <exception cref="OnnxExportException">The exported graph does not reproduce the network in ONNX Runtime.</exception>
    public static OnnxExportResult Export(CnnNetwork network, IReadOnlyList<string>? classLabels, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        options ??= new OnnxExportOptions();
        var p = network.Preprocess;
        if (p.Height != p.Width && options.ImageSize is null)
            throw new NotSupportedException($"The network's input is {p.Height}x{p.Width}; ONNX export writes square inputs: give an image size.");
        var metadata = new Dictionary<string, string>(options.Metadata ?? new Dictionary<string, string>(), StringComparer.Ordinal)
        {
            ["channels"] = p.Channels == 1 ? "gray" : "rgb",
            ["interpolation"] = p.Interpolation.ToString().ToLowerInvariant(),
            ["crop_pct"] = p.CropPct.ToString("R", CultureInfo.InvariantCulture),
        };
        options = options with
        {
            ImageSize = options.ImageSize ?? p.Height,
            Mean = options.Mean ?? p.Mean.Select(m => (double)m).ToArray(),
            Std = options.Std ?? p.Std.Select(s => (double)s).ToArray(),
            ClassLabels = options.ClassLabels ?? classLabels,
            Architecture = options.Architecture ?? network.Architecture,
            Metadata = metadata,
        };
        return network.Exclusive(model => OnnxExporter.Export(model, options));
    }

    /// <summary>Exports the classifier of the pipeline saved at <paramref name="pipelinePath"/> (<see cref="CnnPipelineFile.Save"/>).</summary>
    /// <param name="pipelinePath">The saved pipeline (<c>model.zip</c>).</param>
    /// <param name="options">As for <see cref="Export(CnnClassifierTransformer, OnnxExportOptions?)"/>.</param>
    /// <exception cref="InvalidDataException">The pipeline has no CNN classifier stage.</exception>
    public static OnnxExportResult Export(string pipelinePath, OnnxExportOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(pipelinePath);
        var model = CnnPipelineFile.Load(new MLContext(seed: 0), pipelinePath, out _);
        try
        {
            var classifier = CnnPipelineFile.Stages(model).OfType<CnnClassifierTransformer>().LastOrDefault()
                ?? throw new InvalidDataException($"'{pipelinePath}' holds no CNN classifier stage; save models with 'cnn train'.");
            return Export(classifier, options);
        }
        finally
        {
            foreach (var stage in CnnPipelineFile.Stages(model).OfType<IDisposable>()) stage.Dispose();
        }
    }
}
