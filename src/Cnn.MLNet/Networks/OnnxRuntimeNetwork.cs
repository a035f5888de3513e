using Cnn.Backbones.Models;
using Cnn.Backbones.Onnx.Export;
using Cnn.Backbones.Weights;
using Microsoft.ML.OnnxRuntime;
using static TorchSharp.torch;

namespace Cnn.MLNet.Networks;

/// <summary>
/// A <see cref="CnnNetwork"/>'s eval-mode pass in ONNX Runtime (<see cref="CnnInferenceEngine.OnnxRuntime"/>): the network exported
/// in memory (for pooled features, a copy without its classifier) and verified by the exporter, run with the same thread
/// count as libtorch and ONNX Runtime's full graph optimisation.
/// </summary>
internal sealed class OnnxRuntimeNetwork : IDisposable
{
    private readonly InferenceSession _session;
    private readonly string _output;

    /// <param name="network">The network, as it is now (the export is a snapshot of its weights).</param>
    /// <param name="preLogits">Pooled features (the classifier's input) instead of logits.</param>
    public OnnxRuntimeNetwork(CnnNetwork network, bool preLogits)
    {
        var p = network.Preprocess;
        var options = new OnnxExportOptions { ImageSize = p.Height == p.Width ? p.Height : null, DynamicSize = p.Height != p.Width };
        OnnxExportResult export;
        if (preLogits && network.Model.NumClasses > 0)
        {
            using var headless = ModelRegistry.Create(network.Architecture, network.Spec.Model with { NumClasses = 0, WeightsPath = null });
            using (var weights = StateDict.FromModule(network.Model)) headless.LoadWeights(weights, strict: false);
            export = OnnxExporter.Export(headless, options);
        }
        else
        {
            export = OnnxExporter.Export(network.Model, options);
        }
        _output = export.OutputName;
        using var session = new SessionOptions
        {
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR, IntraOpNumThreads = get_num_threads(), InterOpNumThreads = 1,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        _session = new InferenceSession(Google.Protobuf.MessageExtensions.ToByteArray(export.Model), session);
    }

    /// <summary>The outputs for a float32 CPU batch [N, C, H, W], as a CPU tensor the caller disposes.</summary>
    public Tensor Run(Tensor input)
    {
        using var cpu = input.to(ScalarType.Float32).cpu().contiguous();
        // ONNX Runtime reads the tensor's own native memory (no copy; it does not move, and the tensor outlives the run).
        var bytes = cpu.bytes;
        IntPtr data;
        unsafe
        {
            fixed (byte* pointer = bytes) data = (IntPtr)pointer;
        }
        using var value = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, cpu.shape, data, bytes.Length);
        using var runOptions = new RunOptions();
        using var results = _session.Run(runOptions, [OnnxExporter.InputName], [value], [_output]);
        return tensor(results[0].GetTensorDataAsSpan<float>().ToArray(), results[0].GetTensorTypeAndShape().Shape);
    }

    /// <summary>The outputs for a prepared batch, read in place from its buffer (no tensor made), as a CPU tensor the caller disposes.</summary>
    public Tensor Run(Data.ImageBatch batch)
    {
        using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, batch.PixelMemory, batch.Shape);
        using var runOptions = new RunOptions();
        using var results = _session.Run(runOptions, [OnnxExporter.InputName], [value], [_output]);
        return tensor(results[0].GetTensorDataAsSpan<float>().ToArray(), results[0].GetTensorTypeAndShape().Shape);
    }

    /// <inheritdoc />
    public void Dispose() => _session.Dispose();
}
