using Cnn.Backbones.Weights;

namespace Cnn.Backbones.Onnx;

/// <summary>
/// An ONNX model was given as a weight file (<c>ModelOptions.WeightsPath</c>, <c>--weights</c>) and its initializers do not fit
/// the model as a state dict, as is usual (exporters name them <c>onnx::Conv_193</c>, fold BatchNorm, transpose linear
/// weights). The message advises <c>cnn import</c> / <see cref="OnnxImporter.Import"/>, which maps them by the graph's structure.
/// </summary>
public sealed class OnnxWeightsException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="path">The ONNX file.</param>
    /// <param name="model">The model's name.</param>
    /// <param name="inner">The failed load.</param>
    public OnnxWeightsException(string path, string model, WeightLoadException inner)
        : base($"'{path}' is an ONNX model, and its initializers do not fit {model} as weights ({inner.Report.Describe(3, "; ")}). " +
               $"Import it first: 'cnn import {path} --model {model}' (library: OnnxImporter.Import) maps the graph's weights onto {model}, " +
               "verifies them with ONNX Runtime and writes a .safetensors file to use as --weights / WeightsPath.", inner)
    {
        ArgumentNullException.ThrowIfNull(inner);
        Path = path;
        Report = inner.Report;
    }

    /// <summary>The ONNX file.</summary>
    public string Path { get; }

    /// <summary>What did not fit.</summary>
    public WeightLoadReport Report { get; }
}
