using Microsoft.ML.OnnxRuntime;
using static TorchSharp.torch;

namespace Cnn.Backbones.Onnx;

/// <summary>Runs a serialised ONNX model in ONNX Runtime (CPU) on one float32 input and returns the requested outputs as tensors.</summary>
internal static class OnnxRuntimeRunner
{
    /// <summary>The values named <paramref name="outputs"/> (float32 tensors in the current dispose scope).</summary>
    /// <exception cref="OnnxRuntimeException">ONNX Runtime could not load or run the model.</exception>
    public static Tensor[] Run(byte[] model, string inputName, Tensor input, IReadOnlyList<string> outputs)
    {
        using var options = new SessionOptions { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR, IntraOpNumThreads = 2 };
        using var session = new InferenceSession(model, options);
        using var cpu = input.detach().cpu().to_type(ScalarType.Float32).contiguous();
        using var value = OrtValue.CreateTensorValueFromMemory(cpu.data<float>().ToArray(), cpu.shape);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, new[] { inputName }, new[] { value }, outputs.ToArray());
        return results.Select(r => tensor(r.GetTensorDataAsSpan<float>().ToArray(), r.GetTensorTypeAndShape().Shape)).ToArray();
    }
}
