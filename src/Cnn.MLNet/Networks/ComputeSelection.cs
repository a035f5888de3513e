using Cnn.Backbones.Compute;
using Cnn.Backbones.Models;
using static TorchSharp.torch;

namespace Cnn.MLNet.Networks;

/// <summary>
/// Resolves <see cref="CnnPrecision"/> and <see cref="CnnMemoryFormat"/> into the <see cref="ComputeSettings"/> a backbone runs
/// with, and says why. What Auto turns on for a model is its family's declaration (<see cref="IModelFamily.AutoCompute"/>), from
/// the measurements of <c>benchmarks/Cnn.Benchmarks --compute --model M</c> on a CPU with AVX-512 BF16. Below <see cref="MinimumAutoSize"/> pixels neither helps: at Fashion-MNIST's 28 px resnet18 trained
/// at 322 img/s in bfloat16 against 409 in float32 (<c>cnn train --limit 2560 --epochs 1</c>), and channels-last at 401, because
/// per-layer overheads outweigh arithmetic on maps of 7×7 and smaller.
/// </summary>
internal static class ComputeSelection
{
    /// <summary>
    /// Lets <see cref="CnnPrecision.Float16"/> resolve on the CPU in this asynchronous flow only: for the tests of the float16
    /// training path (loss scaling, skipped steps, the scale in checkpoints), which libtorch's CPU kernels run, slowly.
    /// </summary>
    internal static readonly AsyncLocal<bool> Float16OnCpuForTests = new();

    /// <summary>The smallest input side, in pixels, for which Auto turns bfloat16 and channels-last on.</summary>
    public const int MinimumAutoSize = 64;

    /// <summary>Throws before any work when the precision cannot run on the device asked for.</summary>
    /// <param name="precision">The precision option.</param>
    /// <param name="device">The device option.</param>
    /// <param name="owner">The options' name for messages (<c>CnnTrainerOptions</c>).</param>
    /// <param name="option">The precision option's name for messages (<c>Precision</c>, <c>InferencePrecision</c>).</param>
    /// <exception cref="ArgumentException">Float16 without CUDA.</exception>
    public static void Validate(CnnPrecision precision, CnnDevice device, string owner, string option = "Precision")
    {
        if (!Enum.IsDefined(precision))
            throw new ArgumentException($"{owner}.{option} must be Auto, Float32, BFloat16 or Float16; got {precision}.");
        if (precision == CnnPrecision.Float16 && device == CnnDevice.Cpu)
            throw new ArgumentException($"{owner}.{option} = Float16 needs a CUDA device: CPU kernels for float16 are slow or missing. On the CPU use BFloat16 (or Auto, which picks it where the CPU has native bfloat16).");
    }

    /// <summary>
    /// Throws unless <paramref name="engine"/> is defined and, for ONNX Runtime, the precision is float32 (or Auto, which then
    /// resolves to it) and the device not CUDA. <see cref="CnnInferenceEngine.Auto"/> goes with any precision and device (it is
    /// TorchSharp wherever ONNX Runtime cannot run).
    /// </summary>
    /// <exception cref="ArgumentException">The combination cannot run.</exception>
    public static void ValidateEngine(CnnInferenceEngine engine, CnnPrecision precision, CnnDevice device, string owner, string option = "Precision")
    {
        string name = owner == nameof(Features.CnnFeatureOptions) ? "Engine" : "InferenceEngine";
        if (!Enum.IsDefined(engine))
            throw new ArgumentException($"{owner}.{name} must be Auto, TorchSharp or OnnxRuntime; got {engine}.");
        if (engine != CnnInferenceEngine.OnnxRuntime) return;
        if (precision is not (CnnPrecision.Float32 or CnnPrecision.Auto))
            throw new ArgumentException($"{owner}.{name} = OnnxRuntime computes in float32; {owner}.{option} is {precision}. Set {option} = Float32 (--precision float32), or use the TorchSharp engine for mixed precision.");
        if (device == CnnDevice.Cuda)
            throw new ArgumentException($"{owner}.{name} = OnnxRuntime runs on the CPU; {owner}.Device is Cuda. Set Device = Cpu (--device cpu), or use the TorchSharp engine on CUDA.");
    }

    /// <summary>
    /// The settings for <paramref name="architecture"/> on <paramref name="device"/> with inputs of
    /// <paramref name="inputSize"/> pixels (the smaller side), and a line saying why. With the ONNX Runtime engine Auto is float32
    /// and contiguous, what that engine computes.
    /// </summary>
    /// <exception cref="ArgumentException">Float16 on the CPU.</exception>
    public static (ComputeSettings Settings, string Reason) Resolve(CnnPrecision precision, CnnMemoryFormat format, Device device, string architecture,
        int inputSize, CnnInferenceEngine engine = CnnInferenceEngine.TorchSharp)
    {
        var definition = ModelRegistry.Exists(architecture) ? ModelRegistry.GetDefinition(architecture) : null;
        string family = definition?.Family ?? architecture;
        var auto = definition?.AutoCompute ?? AutoCompute.None;
        bool cuda = device.type == TorchSharp.DeviceType.CUDA;
        bool onnxRuntime = engine == CnnInferenceEngine.OnnxRuntime, small = inputSize < MinimumAutoSize;
        var (reduced, precisionReason) = precision switch
        {
            CnnPrecision.Float32 => ((ScalarType?)null, "float32 as asked"),
            CnnPrecision.Auto when onnxRuntime => (null, "auto: float32 (the ONNX Runtime engine)"),
            CnnPrecision.BFloat16 => (ScalarType.BFloat16, "bfloat16 as asked" + (cuda || CpuFeatures.HasNativeBFloat16 ? "" : " (this CPU has no native bfloat16: expect it to be slow)")),
            CnnPrecision.Float16 when !cuda && !Float16OnCpuForTests.Value => throw new ArgumentException("Precision = Float16 needs a CUDA device; on the CPU use BFloat16 or Auto."),
            CnnPrecision.Float16 => (ScalarType.Float16, "float16 as asked, with loss scaling"),
            _ when cuda => (null, "auto: float32 on CUDA (choose BFloat16 or Float16 explicitly)"),
            _ when !CpuFeatures.HasNativeBFloat16 => (null, "auto: float32 (no native bfloat16 that oneDNN uses on this CPU)"),
            _ when !auto.BFloat16 => (null, $"auto: float32 ({family} measured no faster in bfloat16)"),
            _ when small => (null, $"auto: float32 (inputs of {inputSize} px, under {MinimumAutoSize}, train no faster in bfloat16)"),
            _ => (ScalarType.BFloat16, $"auto: bfloat16 ({string.Join(", ", CpuFeatures.BFloat16InstructionSets)})"),
        };
        var (channelsLast, formatReason) = format switch
        {
            CnnMemoryFormat.Contiguous => (false, "contiguous as asked"),
            CnnMemoryFormat.ChannelsLast => (true, "channels-last as asked"),
            _ when cuda => (false, "auto: contiguous on CUDA"),
            _ when onnxRuntime => (false, "auto: contiguous (the ONNX Runtime engine)"),
            _ when small => (false, $"auto: contiguous (inputs of {inputSize} px, under {MinimumAutoSize})"),
            _ when (reduced is null ? auto.ChannelsLastInFloat32 : auto.ChannelsLastInBFloat16) => (true, "auto: channels-last"),
            _ => (false, $"auto: contiguous ({family} measured no faster channels-last{(reduced is null ? " in float32" : "")})"),
        };
        return (new ComputeSettings(reduced, channelsLast), $"{precisionReason}; {formatReason}");
    }
}
