using Cnn.Backbones.Compute;
using Cnn.Backbones.Models;
using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using static TorchSharp.torch;

namespace Cnn.MLNet.Networks;

/// <summary>
/// A built network: its <see cref="NetworkSpec"/>, the backbone and the device it runs on. Runs batched eval-mode forward passes.
/// Built by <see cref="NetworkBuilder"/>, stored by <see cref="NetworkFile"/>.
/// </summary>
public sealed class CnnNetwork : IDisposable
{
    private readonly object _gate = new();
    private ImageBatcher? _batcher;
    private OnnxRuntimeNetwork? _onnxFeatures, _onnxLogits;

    /// <param name="spec">What the network is (its weights path already cleared).</param>
    /// <param name="model">The backbone, on <paramref name="device"/>.</param>
    /// <param name="device">Where it runs.</param>
    public CnnNetwork(NetworkSpec spec, Backbone model, Device device)
    {
        Spec = spec;
        Model = model;
        Device = device;
    }

    /// <summary>What the network is: architecture, model options, preprocessing.</summary>
    public NetworkSpec Spec { get; }

    /// <summary>Registered architecture name.</summary>
    public string Architecture => Spec.Architecture;

    /// <summary>Evaluation preprocessing (resize, crop, normalisation).</summary>
    public PreprocessOptions Preprocess => Spec.Preprocess;

    /// <summary>The network.</summary>
    public Backbone Model { get; }

    /// <summary>Where the network runs.</summary>
    public Device Device { get; }

    /// <summary>How the backbone computes and why, for logs: <c>bfloat16, channels-last (auto: bfloat16 (avx512_bf16); auto: channels-last)</c>.</summary>
    public string ComputeDescription { get; private set; } = "float32";

    /// <summary>
    /// Sets how the backbone computes (<see cref="Backbone.Compute"/>) from the options, resolving Auto for this device,
    /// architecture, input size and engine, and what runs the inference passes (<see cref="UseEngine"/>).
    /// </summary>
    /// <exception cref="ArgumentException">Float16 on the CPU; ONNX Runtime with a reduced precision or on CUDA.</exception>
    public void UseCompute(CnnPrecision precision, CnnMemoryFormat format, CnnInferenceEngine engine = CnnInferenceEngine.TorchSharp)
    {
        var (settings, reason) = ResolveCompute(precision, format, engine);
        lock (_gate)
        {
            Model.Compute = settings;
            Precision = precision;
            MemoryFormat = format;
        }
        ComputeDescription = $"{settings} ({reason})";
        UseEngine(engine);
    }

    /// <summary>
    /// Computes as <see cref="UseCompute"/> sets until the returned scope is disposed, which puts back the precision, memory
    /// format and engine in force before (a teacher computing in the student's training arithmetic).
    /// </summary>
    /// <exception cref="ArgumentException">Float16 on the CPU.</exception>
    public IDisposable OverrideCompute(CnnPrecision precision, CnnMemoryFormat format, CnnInferenceEngine engine = CnnInferenceEngine.TorchSharp)
    {
        var (previousPrecision, previousFormat, previousEngine) = (Precision, MemoryFormat, Engine);
        UseCompute(precision, format, engine);
        return new ComputeRestore(() => UseCompute(previousPrecision, previousFormat, previousEngine));
    }

    private sealed class ComputeRestore(Action restore) : IDisposable
    {
        private Action? _restore = restore;

        public void Dispose()
        {
            _restore?.Invoke();
            _restore = null;
        }
    }

    /// <summary>
    /// What <see cref="UseCompute"/> would set, without setting it: to check options that apply later (the inference arithmetic
    /// after training) before any work.
    /// </summary>
    /// <exception cref="ArgumentException">Float16 on the CPU.</exception>
    public (ComputeSettings Settings, string Reason) ResolveCompute(CnnPrecision precision, CnnMemoryFormat format, CnnInferenceEngine engine = CnnInferenceEngine.TorchSharp) =>
        ComputeSelection.Resolve(precision, format, Device, Architecture, Math.Min(Preprocess.Height, Preprocess.Width), engine);

    /// <summary>The precision last given to <see cref="UseCompute"/> (Auto unresolved), what a model file stores. Default Float32.</summary>
    public CnnPrecision Precision { get; private set; } = CnnPrecision.Float32;

    /// <summary>The memory format last given to <see cref="UseCompute"/> (Auto unresolved), what a model file stores. Default Contiguous.</summary>
    public CnnMemoryFormat MemoryFormat { get; private set; } = CnnMemoryFormat.Contiguous;

    /// <summary>What runs the no-grad inference passes (<see cref="UseEngine"/>). Default <see cref="CnnInferenceEngine.TorchSharp"/>.</summary>
    public CnnInferenceEngine Engine { get; private set; } = CnnInferenceEngine.TorchSharp;

    /// <summary>Sets what runs <see cref="Forward"/> and <see cref="ForwardBatch"/>; ONNX Runtime needs the CPU and float32.</summary>
    /// <exception cref="ArgumentException">ONNX Runtime with a reduced precision or on CUDA.</exception>
    public void UseEngine(CnnInferenceEngine engine)
    {
        if (engine == CnnInferenceEngine.OnnxRuntime && Model.Compute.ReducedType is not null)
            throw new ArgumentException($"The ONNX Runtime inference engine computes in float32; the network is set to {Model.Compute}. Use Precision = Float32 (--precision float32) with it, or the TorchSharp engine for mixed precision.");
        if (engine == CnnInferenceEngine.OnnxRuntime && Device.type != TorchSharp.DeviceType.CPU)
            throw new ArgumentException($"The ONNX Runtime inference engine runs on the CPU; the network is on {Device}. Use Device = Cpu (--device cpu) with it, or the TorchSharp engine on CUDA.");
        lock (_gate)
        {
            ReleaseOnnxRuntime();
            Engine = engine;
        }
    }

    /// <summary>
    /// Eval-mode outputs for a batch of images: logits ([N, classes]) or pooled features when <paramref name="preLogits"/>, from
    /// the <see cref="Engine"/> (TorchSharp with the BatchNorms folded into the convolutions, or ONNX Runtime).
    /// </summary>
    /// <returns>A CPU float tensor the caller disposes.</returns>
    public Tensor Forward(IReadOnlyList<ImageSample> images, bool preLogits = false)
    {
        using var batch = PrepareBatch(images);
        return ForwardBatch(batch, preLogits);
    }

    /// <summary>As <see cref="Forward"/>, on a batch already prepared (<see cref="PrepareBatch"/>).</summary>
    /// <returns>A CPU float tensor the caller disposes.</returns>
    internal Tensor ForwardBatch(ImageBatch batch, bool preLogits = false)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        lock (_gate)
        {
            var input = batch.ToTensor();
            if (Engine == CnnInferenceEngine.OnnxRuntime)
            {
                var engine = preLogits ? _onnxFeatures ??= new OnnxRuntimeNetwork(this, preLogits: true) : _onnxLogits ??= new OnnxRuntimeNetwork(this, preLogits: false);
                return engine.Run(input).MoveToOuterDisposeScope();
            }
            PrepareForInference();
            input = input.to(Device);
            var output = preLogits ? Model.ForwardHead(Model.ForwardFeatures(input), preLogits: true) : Model.call(input);
            return output.to(CPU).contiguous().MoveToOuterDisposeScope();
        }
    }

    /// <summary>Disposes the ONNX Runtime sessions made so far; the next ONNX Runtime pass exports the network's current weights.</summary>
    public void ReleaseOnnxRuntime()
    {
        lock (_gate)
        {
            _onnxFeatures?.Dispose();
            _onnxLogits?.Dispose();
            _onnxFeatures = _onnxLogits = null;
        }
    }

    /// <summary>
    /// Puts the backbone in eval mode with its BatchNorms folded into its convolutions (<see cref="Backbone.FoldBatchNorm"/>) for
    /// no-grad inference. Training and loading weights unfold; the next call folds the new weights.
    /// </summary>
    public void PrepareForInference()
    {
        lock (_gate)
        {
            Model.eval();
            if (!Model.IsBatchNormFolded) Model.FoldBatchNorm();
        }
    }

    /// <summary>Runs <paramref name="work"/> on the backbone while no other call of this network uses it (forward passes included).</summary>
    public T Exclusive<T>(Func<Backbone, T> work)
    {
        lock (_gate) return work(Model);
    }

    /// <summary>Decodes and preprocesses images in parallel into one batch buffer.</summary>
    internal ImageBatch PrepareBatch(IReadOnlyList<ImageSample> images)
    {
        var batcher = _batcher;
        if (batcher is null || batcher.Options.BatchSize < images.Count)
            _batcher = batcher = new ImageBatcher(new ImagePreprocessor(Preprocess), new ImageBatcherOptions { BatchSize = Math.Max(images.Count, 1) });
        return batcher.CreateBatch(images, Enumerable.Range(0, images.Count).ToArray());
    }

    /// <summary>Releases the backbone's native memory.</summary>
    public void Dispose()
    {
        ReleaseOnnxRuntime();
        Model.Dispose();
    }
}
