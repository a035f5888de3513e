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

    /// <summary>
    /// The faster of the two on this machine, measured: on the CPU in float32, the first pass of a batch of at least
    /// 8 images times TorchSharp (folded, as configured) and ONNX Runtime on the network's
    /// own export on that very batch (one timed run each, after a warm-up run of ONNX Runtime's session) and keeps the faster,
    /// whose timed output is that batch's result; the choice is cached for the
    /// process (per architecture, input size, batch size and thread count) and logged with both rates
    /// (<see cref="Networks.CnnNetwork.EngineDescription"/>). Everywhere else (a reduced precision, CUDA, smaller batches, stage
    /// maps) it is TorchSharp, as it is when the export or its session fails. Either way the outputs are the float32 network's within
    /// float32 rounding.
    /// </summary>
    Auto,
}
