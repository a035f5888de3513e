namespace Cnn.MLNet;

/// <summary>What runs a network's no-grad inference passes (feature extraction, predictions, the bottleneck cache).</summary>
public enum CnnInferenceEngine
{
    /// <summary>TorchSharp, with the network's precision and memory format, BatchNorm folded into the convolutions.</summary>
    TorchSharp,

    /// <summary>
    /// ONNX Runtime (CPU, float32) on the network's own ONNX export, made in memory when first needed and verified against the
    /// TorchSharp network then (<see cref="Cnn.Backbones.Onnx.Export.OnnxExporter"/>): the same outputs within float32 rounding,
    /// at ONNX Runtime's speed (fused convolutions, its own blocked layouts). The export is a snapshot of the weights at that moment.
    /// </summary>
    OnnxRuntime,
}
