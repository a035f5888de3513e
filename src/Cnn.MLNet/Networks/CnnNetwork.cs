using Cnn.Backbones.Compute;
using Cnn.Backbones.Models;
using Cnn.MLNet.Data;
using Cnn.MLNet.Imaging;
using Microsoft.ML;
using Microsoft.ML.Runtime;
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
    private readonly Dictionary<bool, CnnInferenceEngine> _autoChoices = []; // Auto's engine per output (logits, pooled features)

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

    /// <summary>
    /// What runs the no-grad inference passes (<see cref="UseEngine"/>), as asked: <see cref="CnnInferenceEngine.Auto"/> stays Auto
    /// here (what a model file stores); <see cref="AutoChoice"/> is what it chose. Default for a network built directly
    /// <see cref="CnnInferenceEngine.TorchSharp"/>; the options (<see cref="CnnFitOptions.InferenceEngine"/>,
    /// <see cref="Features.CnnFeatureOptions.Engine"/>) default to Auto.
    /// </summary>
    public CnnInferenceEngine Engine { get; private set; } = CnnInferenceEngine.TorchSharp;

    /// <summary>
    /// With <see cref="Engine"/> = <see cref="CnnInferenceEngine.Auto"/>, the engine it chose for the latest bulk pass (at least
    /// 8 images) — TorchSharp or ONNX Runtime; null before such a pass, and for other engines.
    /// </summary>
    public CnnInferenceEngine? AutoChoice { get; private set; }

    /// <summary>
    /// What runs the inference passes and why, for logs: <c>TorchSharp</c>, <c>ONNX Runtime</c>, or Auto's latest choice with
    /// both measured rates, e.g. <c>auto: ONNX Runtime, 61.0 img/s against TorchSharp's 37.2 (resnet18, 3×224×224, batch 32, 2 threads; measured on this batch)</c>.
    /// Each Auto choice is also written to the ML.NET log of the context that built or loaded the network.
    /// </summary>
    public string EngineDescription { get; private set; } = "TorchSharp";

    /// <summary>Where Auto's choices are logged (the <c>MLContext</c> that trained, built or loaded the network), or null.</summary>
    internal IChannelProvider? Log { get; set; }

    /// <summary>Sets what runs <see cref="Forward"/> and <see cref="ForwardBatch"/>; ONNX Runtime needs the CPU and float32 (Auto runs anywhere).</summary>
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
            _autoChoices.Clear();
            AutoChoice = null;
            EngineDescription = engine switch
            {
                CnnInferenceEngine.OnnxRuntime => "ONNX Runtime",
                CnnInferenceEngine.Auto => $"auto: not chosen yet (on the first pass of at least {AutoEngine.MinimumBatch} images)",
                _ => "TorchSharp",
            };
        }
    }

    /// <summary>
    /// Eval-mode outputs for a batch of images: logits ([N, classes]) or pooled features when <paramref name="preLogits"/>, from
    /// the <see cref="Engine"/> (TorchSharp with the BatchNorms folded into the convolutions, ONNX Runtime, or Auto's choice).
    /// </summary>
    /// <returns>A CPU float tensor the caller disposes.</returns>
    public Tensor Forward(IReadOnlyList<ImageSample> images, bool preLogits = false)
    {
        using var batch = PrepareBatch(images);
        return ForwardBatch(batch, preLogits);
    }

    /// <summary>
    /// Eval-mode outputs of many images (logits, or pooled features when <paramref name="preLogits"/>), one row per image in
    /// their order, in passes of <paramref name="batchSize"/> images through the <see cref="Engine"/>. Throughput-bound: batch
    /// k + 1 is decoded and preprocessed on a background task while batch k runs, as training's batches are.
    /// </summary>
    /// <exception cref="ImageDecodeException">An image cannot be decoded; names it.</exception>
    public float[][] ForwardAll(IReadOnlyList<ImageSample> images, int batchSize = 32, bool preLogits = false)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var rows = new float[images.Count][];
        var batcher = new ImageBatcher(new ImagePreprocessor(Preprocess), new ImageBatcherOptions { BatchSize = batchSize });
        foreach (var batch in batcher.EnumerateEpoch(images, epoch: 0))
        {
            using var output = ForwardBatch(batch, preLogits);
            int width = (int)output.shape[1];
            var values = output.data<float>().ToArray();
            for (int k = 0; k < batch.Count; k++)
                rows[batch.SampleIndices[k]] = values.AsSpan(k * width, width).ToArray();
        }
        return rows;
    }

    /// <summary>As <see cref="Forward"/>, on a batch already prepared (<see cref="PrepareBatch"/>).</summary>
    /// <returns>A CPU float tensor the caller disposes.</returns>
    internal Tensor ForwardBatch(ImageBatch batch, bool preLogits = false)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        lock (_gate)
        {
            Tensor? input = null, calibrated = null;
            var engine = Engine != CnnInferenceEngine.Auto ? Engine
                : _autoChoices.TryGetValue(preLogits, out var chosen) ? chosen
                : ChooseEngine(input = batch.ToTensor(), batch.Count, preLogits, out calibrated);
            if (calibrated is not null) return calibrated.MoveToOuterDisposeScope(); // the calibration's own pass of the chosen engine
            // ONNX Runtime reads the batch buffer in place; TorchSharp copies it into a tensor.
            if (engine == CnnInferenceEngine.OnnxRuntime && Engine == CnnInferenceEngine.Auto)
            {
                try
                {
                    return OnnxRuntimeFor(preLogits).Run(batch).MoveToOuterDisposeScope();
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    FallBack(preLogits, ex);
                }
            }
            else if (engine == CnnInferenceEngine.OnnxRuntime)
            {
                return OnnxRuntimeFor(preLogits).Run(batch).MoveToOuterDisposeScope();
            }
            return TorchSharpForward(input ?? batch.ToTensor(), preLogits).MoveToOuterDisposeScope();
        }
    }

    /// <summary>The ONNX Runtime session for the output asked for, exported now if there is none.</summary>
    private OnnxRuntimeNetwork OnnxRuntimeFor(bool preLogits) =>
        preLogits ? _onnxFeatures ??= new OnnxRuntimeNetwork(this, preLogits: true) : _onnxLogits ??= new OnnxRuntimeNetwork(this, preLogits: false);

    /// <summary>The folded TorchSharp pass, as a CPU tensor in the current dispose scope.</summary>
    private Tensor TorchSharpForward(Tensor input, bool preLogits)
    {
        PrepareForInference();
        input = input.to(Device);
        var output = preLogits ? Model.ForwardHead(Model.ForwardFeatures(input), preLogits: true) : Model.call(input);
        return output.to(CPU).contiguous();
    }

    /// <summary>
    /// Auto's engine for this pass (under the gate): the one chosen before for this output, else TorchSharp where Auto does not
    /// measure (<see cref="AutoEngine.WhyTorchSharp"/>), else the process's decision for this key, measured now on
    /// <paramref name="input"/> if there is none. Logs each choice.
    /// </summary>
    /// <param name="input">The batch.</param>
    /// <param name="images">Its image count.</param>
    /// <param name="preLogits">Pooled features instead of logits.</param>
    /// <param name="output">When the choice was measured on this batch, the chosen engine's output of it from the calibration
    /// (in the current dispose scope), so that the batch is not run again; else null.</param>
    private CnnInferenceEngine ChooseEngine(Tensor input, int images, bool preLogits, out Tensor? output)
    {
        output = null;
        if (_autoChoices.TryGetValue(preLogits, out var chosen)) return chosen;
        if (AutoEngine.WhyTorchSharp(this, images) is { } why)
        {
            EngineDescription = $"auto: TorchSharp ({why})";
            return CnnInferenceEngine.TorchSharp;
        }
        var key = AutoEngine.KeyOf(this, images, preLogits);
        var outputs = new CalibrationOutputs();
        var (decision, measuredHere) = AutoEngine.Decide(key, () => Calibrate(input, images, preLogits, outputs));
        var engine = decision.Engine;
        if (measuredHere) output = outputs.Take(engine);
        outputs.Dispose();
        string description = decision.Describe(key, measuredHere);
        if (engine == CnnInferenceEngine.OnnxRuntime && !measuredHere)
        {
            try
            {
                OnnxRuntimeFor(preLogits);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                engine = CnnInferenceEngine.TorchSharp;
                description = $"auto: TorchSharp; ONNX Runtime, chosen earlier in this process for {key}, could not run this network ({OneLine(ex)})";
            }
        }
        _autoChoices[preLogits] = engine;
        Choose(engine, description);
        return engine;
    }

    /// <summary>
    /// Times both engines on this batch with <see cref="AutoEngine.Measurement"/>, keeping each engine's last output of it in
    /// <paramref name="outputs"/>; ONNX Runtime's failure is a decision for TorchSharp. The BatchNorms are folded first, so
    /// that TorchSharp's timed pass is the folded pass that later batches run.
    /// </summary>
    private AutoEngine.Decision Calibrate(Tensor input, int images, bool preLogits, CalibrationOutputs outputs)
    {
        var measure = AutoEngine.Measurement;
        PrepareForInference();
        double torchSharp = measure(CnnInferenceEngine.TorchSharp, () =>
        {
            using var scope = NewDisposeScope();
            outputs.Keep(CnnInferenceEngine.TorchSharp, TorchSharpForward(input, preLogits).MoveToOuterDisposeScope());
        }, images);
        try
        {
            var session = OnnxRuntimeFor(preLogits);
            double onnxRuntime = measure(CnnInferenceEngine.OnnxRuntime, () =>
            {
                using var scope = NewDisposeScope();
                outputs.Keep(CnnInferenceEngine.OnnxRuntime, session.Run(input).MoveToOuterDisposeScope());
            }, images);
            bool faster = onnxRuntime > torchSharp;
            if (!faster) ReleaseOnnxRuntime();
            return new AutoEngine.Decision(faster ? CnnInferenceEngine.OnnxRuntime : CnnInferenceEngine.TorchSharp, torchSharp, onnxRuntime, null);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            ReleaseOnnxRuntime();
            return new AutoEngine.Decision(CnnInferenceEngine.TorchSharp, torchSharp, double.NaN, OneLine(ex));
        }
    }

    /// <summary>Each engine's last output of the calibration batch: the chosen one is the batch's result, the other is freed.</summary>
    private sealed class CalibrationOutputs : IDisposable
    {
        private readonly Dictionary<CnnInferenceEngine, Tensor> _outputs = [];

        /// <summary>Keeps <paramref name="output"/> as <paramref name="engine"/>'s, freeing the one it replaces.</summary>
        public void Keep(CnnInferenceEngine engine, Tensor output)
        {
            if (_outputs.Remove(engine, out var previous)) previous.Dispose();
            _outputs[engine] = output;
        }

        /// <summary><paramref name="engine"/>'s output, now the caller's; null if that engine made none.</summary>
        public Tensor? Take(CnnInferenceEngine engine) => _outputs.Remove(engine, out var output) ? output : null;

        /// <summary>Frees the outputs not taken.</summary>
        public void Dispose()
        {
            foreach (var output in _outputs.Values) output.Dispose();
            _outputs.Clear();
        }
    }

    /// <summary>Auto's ONNX Runtime session failed on a pass: TorchSharp from now on for this output, and the log says so.</summary>
    private void FallBack(bool preLogits, Exception ex)
    {
        ReleaseOnnxRuntime();
        _autoChoices[preLogits] = CnnInferenceEngine.TorchSharp;
        Choose(CnnInferenceEngine.TorchSharp, $"auto: TorchSharp; ONNX Runtime failed on a pass ({OneLine(ex)})");
    }

    private void Choose(CnnInferenceEngine engine, string description)
    {
        AutoChoice = engine;
        EngineDescription = description;
        if (Log is null) return;
        using var channel = Log.Start("CnnInference");
        channel.Info(MessageSensitivity.None, $"Inference engine for {Architecture}: {description}.");
    }

    private static string OneLine(Exception ex) => $"{ex.GetType().Name}: {ex.Message}".ReplaceLineEndings(" ");

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
