using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.MLNet.Distributed;
using Cnn.MLNet.Training.Checkpoints;
using Microsoft.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.MLNet.Training;

/// <summary>
/// One phase's optimisation: AdamW or SGD over parameter groups (discriminative rates, no weight decay on norms and biases), the
/// phase's schedule, gradient accumulation, float16 loss scaling, averaging across processes and clipping, and the run's only
/// optimizer step (<see cref="Update"/>).
/// </summary>
internal sealed class PhaseOptimizer : IDisposable
{
    private readonly IReadOnlyList<ParameterGroup> _groups;
    private readonly List<Parameter> _trainable;
    private readonly torch.optim.Optimizer _optimizer;
    private readonly Func<long, double> _schedule;
    private readonly double? _clipGradNorm;
    private readonly int _batches;
    private readonly int _accumulation;
    private readonly DataParallelTraining? _parallel;
    private readonly IChannel? _channel;

    /// <param name="options">The run's options (optimizer, accumulation, clipping, loss scaling).</param>
    /// <param name="regime">The run's kind (the schedule; whether accumulation and clipping apply).</param>
    /// <param name="model">The model; its parameters that require a gradient train.</param>
    /// <param name="phase">The phase.</param>
    /// <param name="batches">Batches per epoch.</param>
    /// <param name="parallel">The processes to average gradients with, or null.</param>
    /// <param name="channel">Where skipped float16 steps are traced, or null.</param>
    /// <exception cref="InvalidOperationException">Every parameter is frozen.</exception>
    public PhaseOptimizer(CnnFitOptions options, TrainingRegime regime, Backbone model, TrainingPhase phase, int batches, DataParallelTraining? parallel, IChannel? channel)
    {
        _groups = ParameterGroups.Build(model, options, phase.Spread);
        if (_groups.Count == 0)
            throw new InvalidOperationException("Every parameter is frozen: nothing would train. Use a smaller FreezeUpToStage or FreezeMode.Backbone.");
        _trainable = _groups.SelectMany(g => g.Parameters).ToList();
        _optimizer = OptimizationSetup.CreateOptimizer(options, _groups);
        _batches = batches;
        _accumulation = regime.FullRecipe ? options.AccumulationSteps : 1;
        _schedule = regime.Schedule(phase, (batches + _accumulation - 1) / _accumulation);
        _clipGradNorm = regime.FullRecipe ? options.ClipGradNorm : null;
        // Float16 (CUDA) needs loss scaling; bfloat16 and float32 do not.
        Scaler = model.Compute.ReducedType == ScalarType.Float16 ? new LossScaler(options.InitialLossScale, options.LossScaleGrowthInterval) : null;
        _parallel = parallel;
        _channel = channel;
    }

    /// <summary>The float16 loss scaler, or null.</summary>
    public LossScaler? Scaler { get; }

    /// <summary>Optimizer steps of the phase so far (the schedule's position).</summary>
    public long Steps { get; private set; }

    /// <summary>The learning rate of the next optimizer step.</summary>
    public double Rate => _schedule(Steps);

    /// <summary>Clears the gradients.</summary>
    public void ZeroGrad() => _optimizer.zero_grad();

    /// <summary>
    /// Back-propagates batch <paramref name="batchIndex"/>'s (1-based) loss divided by the size of its accumulation group (so a
    /// group's gradient is their mean), scaled for float16; true when the batch ends its group and an update is due.
    /// </summary>
    public bool Backward(Tensor loss, int batchIndex)
    {
        int groupStart = (batchIndex - 1) / _accumulation * _accumulation;
        var groupLoss = loss.DividedBy(Math.Min(_accumulation, _batches - groupStart));
        (Scaler is null ? groupLoss : Scaler.ScaleLoss(groupLoss)).backward();
        return batchIndex % _accumulation == 0 || batchIndex >= _batches;
    }

    /// <summary>
    /// One optimizer step at the schedule's rate: average across processes, unscale (float16), clip, step, clear, update the
    /// average; returns the rate. A float16 step whose gradients overflowed is skipped, as PyTorch's <c>GradScaler</c> does.
    /// </summary>
    public double Update(Backbone model, ModelEma? ema)
    {
        long step = Steps++;
        double rate = _schedule(step);
        OptimizationSetup.SetLearningRate(_optimizer, _groups, rate);
        _parallel?.AverageGradients(_trainable);
        if (Scaler is not null && !Scaler.UnscaleAndUpdate(_trainable))
        {
            _channel?.Trace(MessageSensitivity.None, $"Step {step + 1} skipped: a float16 gradient overflowed; loss scale now {Scaler.Scale}.");
            return rate;
        }
        if (_clipGradNorm is { } maxNorm)
            nn.utils.clip_grad_norm_(_trainable, maxNorm);
        _optimizer.step();
        _optimizer.zero_grad();
        ema?.Update(model);
        NativeHeap.KeepStepMemory(); // from the first step on, the heap keeps what a step frees for the next (once per process)
        return rate;
    }

    /// <summary>Takes a checkpoint's optimizer state (when it has one), step count and loss scale.</summary>
    public void Restore(TrainingCheckpoint checkpoint)
    {
        if (checkpoint.Optimizer.Length > 0) // empty when the checkpoint ended the previous phase: this one starts afresh
            using (var reader = new BinaryReader(new MemoryStream(checkpoint.Optimizer))) ((OptimizerHelper)_optimizer).load_state_dict(reader);
        Steps = checkpoint.Position.Step;
        if (Scaler is not null && checkpoint.LossScale is { } lossScale) Scaler.Restore(lossScale);
    }

    /// <summary>The optimizer's state, for a checkpoint.</summary>
    public byte[] SaveState()
    {
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true)) ((OptimizerHelper)_optimizer).save_state_dict(writer);
        return buffer.ToArray();
    }

    /// <inheritdoc/>
    public void Dispose() => _optimizer.Dispose();
}
