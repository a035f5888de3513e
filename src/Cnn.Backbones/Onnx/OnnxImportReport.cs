using Cnn.Backbones.Models;
using Cnn.Backbones.Weights;

namespace Cnn.Backbones.Onnx;

/// <summary>One state-dict entry produced by the importer and where its values come from.</summary>
/// <param name="StateDictKey">The key in the architecture's state dict (torchvision's name).</param>
/// <param name="Shape">Its shape.</param>
/// <param name="OnnxTensor">The ONNX initializer it was taken from, or null when the importer made it (see <paramref name="Note"/>).</param>
/// <param name="OnnxShape">The initializer's shape, or null.</param>
/// <param name="Note">How the value was derived, e.g. <c>"transposed"</c> or <c>"BatchNorm folded into the Conv: 1"</c>; empty when copied as is.</param>
public sealed record OnnxMappingEntry(string StateDictKey, IReadOnlyList<long> Shape, string? OnnxTensor, IReadOnlyList<long>? OnnxShape, string Note);

/// <summary>What <see cref="OnnxImporter.Import"/> mapped and how closely the mapped model reproduced ONNX Runtime's output.</summary>
/// <param name="OnnxPath">The imported model.</param>
/// <param name="Architecture">The registered architecture the weights were mapped onto.</param>
/// <param name="NumClasses">Classes of the mapped classifier; 0 when the ONNX graph has none (a featurizer).</param>
/// <param name="Entries">Every state-dict entry, in state-dict order.</param>
/// <param name="InputShape">The random input both runtimes were given.</param>
/// <param name="MaxAbsDifference">Largest |ours − ONNX Runtime| over the graph's output.</param>
/// <param name="MaxAbsReference">Largest |ONNX Runtime| over the output (the scale the difference is relative to).</param>
/// <param name="LayersCompared">Intermediate layer outputs compared as well (every mapped layer).</param>
public sealed record OnnxImportReport(string OnnxPath, string Architecture, int NumClasses, IReadOnlyList<OnnxMappingEntry> Entries,
    IReadOnlyList<long> InputShape, double MaxAbsDifference, double MaxAbsReference, int LayersCompared)
{
    /// <summary>The output difference relative to the output's scale (<see cref="MaxAbsDifference"/> / <see cref="MaxAbsReference"/>).</summary>
    public double RelativeDifference => MaxAbsDifference / Math.Max(MaxAbsReference, double.Epsilon);

    /// <summary>
    /// With a preprocessing graph (<see cref="OnnxImporter.ImportWithPreprocessing"/>): the largest output difference, relative to
    /// the output's largest value, between ONNX Runtime running both graphs on a random image and the model with the folded weights
    /// given the image minus the exact mean; null without one.
    /// </summary>
    public double? PreprocessedRelativeDifference { get; init; }

    /// <summary>
    /// With a preprocessing graph: the same comparison with <see cref="OnnxImportResult.PretrainedConfig"/>'s per-channel mean and
    /// std instead of the exact mean (what replacing a per-pixel mean image by its channel means costs); null without one.
    /// </summary>
    public double? PerChannelMeanRelativeDifference { get; init; }
}

/// <summary>The weights <see cref="OnnxImporter.Import"/> produced, verified, with the model options they fit. Disposing it disposes the weights.</summary>
public sealed class OnnxImportResult : IDisposable
{
    internal OnnxImportResult(StateDict weights, ModelOptions options, OnnxImportReport report, PretrainedConfig? pretrainedConfig = null)
    {
        Weights = weights;
        Options = options;
        Report = report;
        PretrainedConfig = pretrainedConfig;
    }

    /// <summary>
    /// The preprocessing the weights expect, when it was imported too (<see cref="OnnxImporter.ImportWithPreprocessing"/>); null
    /// when only the network was imported (its input is then what the ONNX graph's input was).
    /// </summary>
    public PretrainedConfig? PretrainedConfig { get; }

    /// <summary>The state dict, with the architecture's (torchvision's) keys.</summary>
    public StateDict Weights { get; }

    /// <summary>
    /// The options the weights were verified with, for <see cref="ModelRegistry.Create"/>: <see cref="ModelOptions.NumClasses"/> and
    /// <see cref="ModelOptions.InChannels"/> as found in the graph, and <see cref="ModelOptions.BlockCounts"/> where the graph has
    /// other blocks per stage than the architecture.
    /// </summary>
    public ModelOptions Options { get; }

    /// <summary>The mapping and verification report.</summary>
    public OnnxImportReport Report { get; }

    /// <summary>
    /// Writes the weights as safetensors with what a network built from them needs beside the tensors: <c>cnn.source</c>,
    /// <c>cnn.architecture</c>, <c>cnn.num_classes</c>, <c>cnn.block_counts</c> (when not the architecture's own) and the imported
    /// preprocessing's <c>cnn.mean</c> / <c>cnn.std</c>, which <c>NetworkSpec.For</c> reads back.
    /// </summary>
    /// <param name="path">The file to write.</param>
    /// <param name="sourceName">The ONNX file's name, recorded as <c>cnn.source</c>.</param>
    public void WriteSafeTensors(string path, string sourceName)
    {
        var metadata = new Dictionary<string, string>(Weights.Metadata, StringComparer.Ordinal)
        {
            ["cnn.source"] = sourceName,
            ["cnn.architecture"] = Report.Architecture,
            ["cnn.num_classes"] = Report.NumClasses.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        if (Options.BlockCounts is { } blocks) metadata["cnn.block_counts"] = string.Join(",", blocks);
        SafeTensors.Write(path, Weights, metadata);
    }

    /// <summary>Disposes the weights.</summary>
    public void Dispose() => Weights.Dispose();
}

/// <summary>
/// An ONNX model could not be mapped onto the architecture, or the mapped model does not compute what ONNX Runtime computes.
/// The message names the file, the first layer or tensor concerned and what to try.
/// </summary>
public sealed class OnnxImportException : WeightFileException
{
    internal OnnxImportException(string filePath, string message, string? tensorName = null, Exception? inner = null)
        : base(filePath, message, tensorName, inner) { }
}
