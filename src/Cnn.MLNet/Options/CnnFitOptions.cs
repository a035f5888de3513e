using Cnn.MLNet.Training;
using Microsoft.ML;

namespace Cnn.MLNet;

/// <summary>
/// What every network-training estimator shares (<see cref="CnnTrainerOptions"/> for fine-tuning,
/// <see cref="Distillation.CnnDistillationOptions"/> for distillation): columns, optimisation, schedule, device, preprocessing
/// and augmentation, robustness and cancellation. Each option a command line offers is declared on its property
/// (<see cref="CommandLineOptionAttribute"/>: name, alias, range or words, help text), from which <c>cnn train</c>,
/// <c>cnn distill</c> and <c>cnn lr-find</c> build their typed options.
/// </summary>
public abstract class CnnFitOptions
{
    /// <summary>Image column: an image (<c>LoadImages</c>), encoded bytes (<c>LoadRawImageBytes</c>) or a text column of paths. Default <c>Image</c>.</summary>
    public string ImageColumnName { get; set; } = "Image";

    /// <summary>Output column of class probabilities. Default <c>Score</c>.</summary>
    public string ScoreColumnName { get; set; } = "Score";

    /// <summary>Output key column of the predicted class, of the label's key type. Default <c>PredictedLabel</c>.</summary>
    public string PredictedLabelColumnName { get; set; } = "PredictedLabel";

    /// <summary>Training epochs (passes over the training data). Default 5.</summary>
    [CommandLineOption("--epochs", Alias = "-e", HelpText = "training epochs", Min = 1)]
    public int Epochs { get; set; } = 5;

    /// <summary>Images per optimizer step. Default 32.</summary>
    [CommandLineOption("--batch-size", Alias = "-b", HelpText = "images per step", Min = 2)]
    public int BatchSize { get; set; } = 32;

    /// <summary>Peak learning rate. Default 1e-3 (AdamW); use about 0.01–0.1 for SGD.</summary>
    [CommandLineOption("--lr", HelpText = "peak learning rate of AdamW with cosine decay", Min = 1e-8, Max = 10)]
    public double LearningRate { get; set; } = 1e-3;

    /// <summary>Optimizer. Default AdamW.</summary>
    [CommandLineOption("--opt", HelpText = "optimizer: adamw or sgd (momentum 0.9)", Values = "adamw|sgd")]
    public CnnOptimizer Optimizer { get; set; } = CnnOptimizer.AdamW;

    /// <summary>SGD momentum. Default 0.9.</summary>
    public double Momentum { get; set; } = 0.9;

    /// <summary>Weight decay. Default 1e-4.</summary>
    [CommandLineOption("--weight-decay", HelpText = "decoupled weight decay", Min = 0, Max = 10)]
    public double WeightDecay { get; set; } = 1e-4;

    /// <summary>Learning-rate shape after warm-up. Default cosine.</summary>
    [CommandLineOption("--sched", HelpText = "learning-rate schedule: cosine, onecycle (PyTorch's OneCycleLR) or constant", Values = "cosine|onecycle|constant")]
    public LearningRateScheduleKind Schedule { get; set; } = LearningRateScheduleKind.Cosine;

    /// <summary>Epochs of linear warm-up (fractions allowed). Default 0.</summary>
    [CommandLineOption("--warmup", HelpText = "epochs of linear learning-rate warm-up, fractions allowed", Min = 0, Max = 1e6)]
    public double WarmupEpochs { get; set; }

    /// <summary>Where the trained network runs. Default <see cref="CnnDevice.Auto"/>.</summary>
    [CommandLineOption("--device", HelpText = "where the network runs: auto, cpu or cuda", Values = "auto|cpu|cuda")]
    public CnnDevice Device { get; set; } = CnnDevice.Auto;

    /// <summary>
    /// Arithmetic of training and validation. Default <see cref="CnnPrecision.Auto"/>: bfloat16
    /// mixed precision where the CPU has native bfloat16 (usable by libtorch's oneDNN), the family measured faster in it and the
    /// input is at least 64 px, else float32 (in the README's accuracy check, over three seeds, bfloat16 ended 0.14 points of
    /// test accuracy below float32 on average). <see cref="CnnPrecision.Float32"/> is the reference arithmetic of the parity tests.
    /// </summary>
    [CommandLineOption("--precision", HelpText = "arithmetic: auto (bfloat16 mixed precision where the CPU has native bfloat16 and the input is at least 64 px, else float32), float32, bfloat16, or float16 (CUDA only)", Values = "auto|float32,fp32|bfloat16,bf16|float16,fp16")]
    public CnnPrecision Precision { get; set; } = CnnPrecision.Auto;

    /// <summary>
    /// Arithmetic of the trained model's predictions, whatever <see cref="Precision"/> it trained in: of the transformer
    /// <c>Fit</c> returns and, stored in the model file, of the one <c>CnnPipelineFile.Load</c> returns, so both score the same.
    /// Default <see cref="CnnPrecision.Float32"/>, the reference arithmetic; <see cref="CnnPrecision.Auto"/> is resolved where
    /// the model runs (bfloat16 on a CPU with native bfloat16).
    /// </summary>
    public CnnPrecision InferencePrecision { get; set; } = CnnPrecision.Float32;

    /// <summary>
    /// <see cref="CnnPrecision.Float16"/> only: the loss scale training starts with (<c>init_scale</c> of PyTorch's
    /// <c>GradScaler</c> and fastai's <c>MixedPrecision</c>). Default 65536.
    /// </summary>
    public double InitialLossScale { get; set; } = Training.LossScaler.DefaultInitialScale;

    /// <summary>
    /// <see cref="CnnPrecision.Float16"/> only: finite steps in a row after which the loss scale doubles (<c>growth_interval</c>);
    /// a step whose gradients overflow halves it and is skipped. Default 2000.
    /// </summary>
    public int LossScaleGrowthInterval { get; set; } = Training.LossScaler.DefaultGrowthInterval;

    /// <summary>
    /// Memory layout of the activations. Default <see cref="CnnMemoryFormat.Auto"/>: channels-last on the CPU with inputs of at
    /// least 64 px for the convolutional families that trained faster so in the chosen precision, else contiguous.
    /// </summary>
    [CommandLineOption("--memory-format", HelpText = "activation layout: auto (channels-last on the CPU, inputs of at least 64 px, for the convolutional families that trained faster so in the precision used), contiguous or channels-last", Values = "auto|contiguous|channels-last")]
    public CnnMemoryFormat MemoryFormat { get; set; } = CnnMemoryFormat.Auto;

    /// <summary>
    /// Memory layout of the trained model's predictions (with <see cref="InferencePrecision"/>), stored in the model file and
    /// used again after <c>CnnPipelineFile.Load</c>. Default <see cref="CnnMemoryFormat.Contiguous"/>.
    /// </summary>
    public CnnMemoryFormat InferenceMemoryFormat { get; set; } = CnnMemoryFormat.Contiguous;

    /// <summary>
    /// What runs the no-grad inference passes: the bottleneck cache's one pass over the images and the trained model's
    /// predictions. Default <see cref="CnnInferenceEngine.Auto"/>: on the CPU in float32, the faster of TorchSharp and ONNX Runtime
    /// as measured on the first pass of at least 8 images (logged), else TorchSharp; <see cref="CnnInferenceEngine.OnnxRuntime"/>
    /// needs float32 on the CPU. Stored in the model file. Training itself always runs in TorchSharp.
    /// </summary>
    [CommandLineOption("--engine", HelpText = "what runs inference (predictions, features, the bottleneck cache): auto (on the CPU in float32, the faster of torch and onnxruntime, measured on the first batch of at least 8 images; else torch), torch, or onnxruntime (the network's own ONNX export, float32 on the CPU)", Values = "auto|torch,torchsharp=TorchSharp|onnxruntime,ort")]
    public CnnInferenceEngine InferenceEngine { get; set; } = CnnInferenceEngine.Auto;

    /// <summary>Seed for weight initialisation, shuffling, augmentation and any validation split. Default 0.</summary>
    [CommandLineOption("--seed", HelpText = "seed of initialisation, shuffling, augmentation and the split")]
    public int Seed { get; set; }

    /// <summary>Normalisation mean per channel; null uses the pretrained configuration's (ImageNet's for 3 channels).</summary>
    public IReadOnlyList<float>? Mean { get; set; }

    /// <summary>Normalisation standard deviation per channel; null uses the pretrained configuration's.</summary>
    public IReadOnlyList<float>? Std { get; set; }

    /// <summary>Evaluation centre-crop fraction; null uses the pretrained configuration's (e.g. 0.875).</summary>
    [CommandLineOption("--crop-pct", HelpText = "centre-crop fraction (unset: the model's configuration)", Min = 0.01, Max = 1)]
    public double? CropPct { get; set; }

    /// <summary>Training augmentation: random resized crop (scale <see cref="AugmentMinScale"/>–1) and horizontal flip. Default on.</summary>
    [CommandLineOption("--augment", HelpText = "random resized crops and flips", OnOff = true)]
    public bool Augment { get; set; } = true;

    /// <summary>Lower bound of the random resized crop's area fraction. Default 0.08 (torchvision).</summary>
    [CommandLineOption("--min-scale", HelpText = "smallest area fraction of the random resized crop; 1 = flips only", Min = 0.01, Max = 1)]
    public double AugmentMinScale { get; set; } = 0.08;

    /// <summary>
    /// Label smoothing ε in [0, 1): the target puts 1 − ε + ε/C on the true class and ε/C on every other one, as
    /// <c>torch.nn.functional.cross_entropy(label_smoothing=ε)</c> (timm's <c>--smoothing</c>). Default 0.
    /// </summary>
    [CommandLineOption("--smoothing", HelpText = "label smoothing of the cross-entropy", Min = 0, Max = 0.99)]
    public double LabelSmoothing { get; set; }

    /// <summary>
    /// Mixup α (timm's <c>--mixup</c>): when &gt; 0, each batch is blended with its reverse, <c>λ·x + (1 − λ)·flip(x)</c>, with
    /// λ ~ Beta(α, α), and so are the (smoothed) targets. Default 0 (off); timm's recipes use 0.8.
    /// </summary>
    [CommandLineOption("--mixup", HelpText = "mixup alpha: blend each batch with its reverse, lambda ~ Beta(alpha, alpha); 0 = off, timm uses 0.8", Min = 0, Max = 100)]
    public double MixupAlpha { get; set; }

    /// <summary>
    /// CutMix α (timm's <c>--cutmix</c>): when &gt; 0, a box of area fraction 1 − λ (λ ~ Beta(α, α)) is pasted from the reversed
    /// batch and λ is corrected to the box actually pasted. Default 0 (off); timm's recipes use 1.0.
    /// </summary>
    [CommandLineOption("--cutmix", HelpText = "CutMix alpha: paste a box from the reversed batch; 0 = off, timm uses 1.0", Min = 0, Max = 100)]
    public double CutMixAlpha { get; set; }

    /// <summary>Probability that a batch is mixed at all (timm's <c>--mixup-prob</c>). Default 1.</summary>
    [CommandLineOption("--mixup-prob", HelpText = "probability that a batch is mixed", Min = 0, Max = 1)]
    public double MixupProbability { get; set; } = 1;

    /// <summary>With both mixup and CutMix on: probability that a mixed batch uses CutMix (timm's <c>--mixup-switch-prob</c>). Default 0.5.</summary>
    [CommandLineOption("--mixup-switch-prob", HelpText = "with --mixup and --cutmix: probability of CutMix for a mixed batch", Min = 0, Max = 1)]
    public double MixupSwitchProbability { get; set; } = 0.5;

    /// <summary>
    /// Decay of an exponential moving average of the weights, updated after every optimizer step as timm's <c>ModelEmaV2</c>
    /// (<c>ema = decay·ema + (1 − decay)·w</c>; buffers too; integer buffers are copied). Null (default) keeps no average;
    /// timm's <c>--model-ema-decay</c> default is 0.9998, which suits long runs: short ones want about 0.99–0.999.
    /// </summary>
    [CommandLineOption("--model-ema-decay", HelpText = "decay of the weight average (--model-ema uses timm's 0.9998; about 0.99-0.999 suits short runs); implies --model-ema", Min = 0.5, Max = 0.999999)]
    public double? ModelEmaDecay { get; set; }

    /// <summary>
    /// With <see cref="ModelEmaDecay"/>: validate, early-stop and return the averaged weights (true, default), or only report
    /// the average's validation score next to the trained weights' (false).
    /// </summary>
    public bool UseModelEmaWeights { get; set; } = true;

    /// <summary>Clip the gradients' global L2 norm to this value before each step (<c>torch.nn.utils.clip_grad_norm_</c>; timm's <c>--clip-grad</c>). Null: no clipping.</summary>
    [CommandLineOption("--clip-grad", HelpText = "clip the gradients' global L2 norm to F before each step (unset: no clipping)", Min = 1e-8, Max = 1e9)]
    public double? ClipGradNorm { get; set; }

    /// <summary>
    /// Batches whose gradients are summed (each loss divided by the group's size) before one optimizer step: an effective batch of
    /// <see cref="BatchSize"/> × this. The schedule counts optimizer steps. Default 1. BatchNorm still sees batches of <see cref="BatchSize"/>.
    /// </summary>
    [CommandLineOption("--accum-steps", HelpText = "batches whose gradients are summed into one optimizer step", Min = 1, Max = 1024)]
    public int AccumulationSteps { get; set; } = 1;

    /// <summary>
    /// Apply weight decay to biases and normalisation weights too (every parameter with fewer than two dimensions). Default false:
    /// as timm, those are left without decay.
    /// </summary>
    [CommandLineOption("--decay-norm-bias", HelpText = "apply weight decay to biases and normalisation weights too (default: not, as timm)")]
    public bool DecayNormAndBias { get; set; }

    /// <summary>
    /// Head-only epochs before <see cref="Epochs"/> epochs of the network as <see cref="CnnTrainerOptions.Freeze"/> leaves it
    /// (fastai's <c>fine_tune(epochs, freeze_epochs)</c>): the backbone is frozen, then unfrozen with discriminative learning rates
    /// (<see cref="DiscriminativeLearningRateRatio"/>, fastai's 100 unless set, or <see cref="LayerDecay"/>). Each phase runs its
    /// own schedule. Default 0.
    /// </summary>
    [CommandLineOption("--freeze-epochs", HelpText = "first train only the head for N epochs, then everything with discriminative rates (fastai's fine_tune)", Min = 0, Max = 100000)]
    public int FreezeEpochs { get; set; }

    /// <summary>
    /// Discriminative learning rates (fastai's <c>slice(lr / ratio, lr)</c>): the stage groups get rates spaced geometrically from
    /// <see cref="LearningRate"/>/ratio (stem) to <see cref="LearningRate"/> (head). Null: 100 after <see cref="FreezeEpochs"/>,
    /// otherwise one rate for all. Cannot be combined with <see cref="LayerDecay"/>.
    /// </summary>
    [CommandLineOption("--lr-mult", HelpText = "discriminative rates: the stem trains at lr/F rising geometrically to lr at the head (fastai's lr_mult; unset: 100 after --freeze-epochs, else 1)", Min = 1, Max = 1e6)]
    public double? DiscriminativeLearningRateRatio { get; set; }

    /// <summary>
    /// timm's layer-wise learning-rate decay (<c>--layer-decay</c>): stage group i of G (stem 0, head G − 1) trains at
    /// <see cref="LearningRate"/> × decay^(G − 1 − i). Null: off. Cannot be combined with <see cref="DiscriminativeLearningRateRatio"/>.
    /// </summary>
    [CommandLineOption("--layer-decay", HelpText = "timm's layer-wise rate decay: stage i of G trains at lr * F^(G-1-i) (instead of --lr-mult)", Min = 0.01, Max = 1)]
    public double? LayerDecay { get; set; }

    /// <summary>
    /// A folder for checkpoints (<c>cnn train --checkpoint-dir</c>): after every epoch (and every <see cref="CheckpointEverySteps"/>
    /// optimizer steps) the whole training state is written there atomically, so that <see cref="ResumeFrom"/> can continue an
    /// interrupted run to the same weights. Null (default): no checkpoints.
    /// </summary>
    [CommandLineOption("--checkpoint-dir", HelpText = "write the training state to this folder after every epoch, atomically (see --resume)", ValueName = "<folder>")]
    public string? CheckpointDirectory { get; set; }

    /// <summary>Checkpoints kept in <see cref="CheckpointDirectory"/>, newest first; older ones are deleted. Default 3.</summary>
    [CommandLineOption("--keep-checkpoints", HelpText = "checkpoints kept in --checkpoint-dir, newest first", Min = 1, Max = 10000)]
    public int CheckpointsKept { get; set; } = 3;

    /// <summary>Also write a checkpoint every this many optimizer steps within an epoch. Null (default): at epoch ends only.</summary>
    [CommandLineOption("--checkpoint-every", HelpText = "also write a checkpoint every N optimizer steps", Min = 1)]
    public int? CheckpointEverySteps { get; set; }

    /// <summary>
    /// Continue the run recorded in this checkpoint file, or in the newest whole checkpoint of this folder (timm's
    /// <c>--resume</c>; <c>cnn train --resume</c>). The data and every option that changes the result must be the run's own;
    /// a difference is refused by name. Null (default): start afresh.
    /// </summary>
    [CommandLineOption("--resume", HelpText = "continue the run of this checkpoint file, or of the newest whole checkpoint in this folder (same data and options)", ValueName = "<folder|file>")]
    public string? ResumeFrom { get; set; }

    /// <summary>Skip images that cannot be decoded (and report how many) instead of failing. Default false.</summary>
    [CommandLineOption("--skip-corrupt", HelpText = "skip images that cannot be decoded (and report how many) instead of failing")]
    public bool SkipCorruptImages { get; set; }

    /// <summary>Validation data (same schema as the training data), or null.</summary>
    public IDataView? ValidationSet { get; set; }

    /// <summary>Without <see cref="ValidationSet"/>: fraction of the training rows held out for validation (stratified, seeded). Default 0.</summary>
    [CommandLineOption("--val-split", HelpText = "fraction held out for validation, stratified", Min = 0, Max = 0.9)]
    public double ValidationFraction { get; set; }

    /// <summary>Stop when the watched metric has not improved for this many epochs (null = never stop early). Needs validation data.</summary>
    [CommandLineOption("--patience", HelpText = "stop after N epochs without validation improvement (needs validation data)", Min = 1)]
    public int? EarlyStoppingPatience { get; set; }

    /// <summary>Metric watched by early stopping; the best epoch's weights are kept when validation data is present.</summary>
    public EarlyStoppingMetric EarlyStoppingMetric { get; set; } = EarlyStoppingMetric.ValidationLoss;

    /// <summary>Called after every optimizer step with the epoch's progress (for progress bars); keep it cheap.</summary>
    public Action<BatchProgress>? BatchCompleted { get; set; }

    /// <summary>
    /// Under <c>mpirun</c> (data-parallel training, one rank per process): called on rank 0 when training ends with the gradient
    /// traffic (bytes per step, time inside allreduce). Never called in a process that was not launched by mpirun.
    /// </summary>
    public Action<Distributed.DataParallelReport>? DataParallelCompleted { get; set; }

    /// <summary>
    /// Under <c>mpirun</c>: normalise every BatchNorm in training mode with the statistics of the global batch, all ranks' images
    /// together (PyTorch's <c>SyncBatchNorm</c>; timm's <c>--sync-bn</c>), so N ranks of batch B train as one process of batch N·B.
    /// Default false: each rank normalises with its own batch's statistics, as DistributedDataParallel does, which is cheaper (no
    /// communication inside the forward pass) and differs noticeably only when the per-rank batch is small. No effect in a process
    /// that was not launched by mpirun.
    /// </summary>
    [CommandLineOption("--sync-bn", HelpText = "under mpirun: normalise BatchNorm with the statistics of all ranks' batches together (SyncBatchNorm; default: each rank's own, as DDP)")]
    public bool SyncBatchNorm { get; set; }

    /// <summary>Cancels training; checked before every batch.</summary>
    public CancellationToken CancellationToken { get; set; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the option (as <c>TypeName.Option</c>) and its allowed range.</summary>
    protected void Check(bool ok, string name, object? value, string rule)
    {
        if (!ok) throw new ArgumentOutOfRangeException(name, value, $"{GetType().Name}.{name} {rule}; got {value}.");
    }

    /// <summary>
    /// Checks the shared values. The network-dependent ones (mean and std per input channel, the model options) are checked
    /// where the network's spec is made (<see cref="Networks.NetworkSpec.For"/>).
    /// </summary>
    /// <param name="model">The model options of the network being trained, when known (its input size is checked), or null.</param>
    protected void ValidateShared(Cnn.Backbones.Models.ModelOptions? model)
    {
        if (model is not null)
        {
            Check(model.ImageSize is null || model.ImageSize >= 8, "Model.ImageSize", model.ImageSize, "must be >= 8 pixels or null");
            Check(!model.FeaturesOnly, "Model.FeaturesOnly", model.FeaturesOnly, "must be false: training needs the classifier head");
        }
        Check(Epochs >= 1, nameof(Epochs), Epochs, "must be >= 1");
        Check(Enum.IsDefined(MemoryFormat), nameof(MemoryFormat), MemoryFormat, "must be Auto, Contiguous or ChannelsLast");
        Networks.ComputeSelection.Validate(Precision, Device, GetType().Name);
        Networks.ComputeSelection.ValidateEngine(InferenceEngine, Precision, Device, GetType().Name);
        Check(Enum.IsDefined(InferenceMemoryFormat), nameof(InferenceMemoryFormat), InferenceMemoryFormat, "must be Auto, Contiguous or ChannelsLast");
        Networks.ComputeSelection.Validate(InferencePrecision, Device, GetType().Name, nameof(InferencePrecision));
        Networks.ComputeSelection.ValidateEngine(InferenceEngine, InferencePrecision, Device, GetType().Name, nameof(InferencePrecision));
        Check(InitialLossScale > 0 && float.IsFinite((float)InitialLossScale), nameof(InitialLossScale), InitialLossScale, "must be a positive number within float32's range");
        Check(LossScaleGrowthInterval >= 1, nameof(LossScaleGrowthInterval), LossScaleGrowthInterval, "must be >= 1");
        Check(BatchSize >= 1, nameof(BatchSize), BatchSize, "must be >= 1");
        Check(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), LearningRate, "must be a positive number");
        Check(Momentum >= 0 && Momentum < 1, nameof(Momentum), Momentum, "must be in [0, 1)");
        Check(WeightDecay >= 0 && double.IsFinite(WeightDecay), nameof(WeightDecay), WeightDecay, "must be >= 0");
        Check(WarmupEpochs >= 0 && WarmupEpochs <= Epochs, nameof(WarmupEpochs), WarmupEpochs, $"must be in [0, Epochs={Epochs}]");
        Check(ValidationFraction >= 0 && ValidationFraction < 1, nameof(ValidationFraction), ValidationFraction, "must be in [0, 1)");
        Check(EarlyStoppingPatience is null || EarlyStoppingPatience >= 1, nameof(EarlyStoppingPatience), EarlyStoppingPatience, "must be >= 1 or null");
        Check(EarlyStoppingPatience is null || ValidationSet is not null || ValidationFraction > 0, nameof(EarlyStoppingPatience), EarlyStoppingPatience,
            "needs validation data: set ValidationSet or ValidationFraction");
        Check(CropPct is null || (CropPct > 0 && CropPct <= 1), nameof(CropPct), CropPct, "must be in (0, 1]");
        Check(AugmentMinScale > 0 && AugmentMinScale <= 1, nameof(AugmentMinScale), AugmentMinScale, "must be in (0, 1]");
        Check(LabelSmoothing >= 0 && LabelSmoothing < 1, nameof(LabelSmoothing), LabelSmoothing, "must be in [0, 1)");
        Check(MixupAlpha >= 0 && double.IsFinite(MixupAlpha), nameof(MixupAlpha), MixupAlpha, "must be >= 0 (0 = off)");
        Check(CutMixAlpha >= 0 && double.IsFinite(CutMixAlpha), nameof(CutMixAlpha), CutMixAlpha, "must be >= 0 (0 = off)");
        Check(MixupProbability >= 0 && MixupProbability <= 1, nameof(MixupProbability), MixupProbability, "must be in [0, 1]");
        Check(MixupSwitchProbability >= 0 && MixupSwitchProbability <= 1, nameof(MixupSwitchProbability), MixupSwitchProbability, "must be in [0, 1]");
        Check(ModelEmaDecay is null || (ModelEmaDecay > 0 && ModelEmaDecay < 1), nameof(ModelEmaDecay), ModelEmaDecay, "must be in (0, 1) or null");
        Check(ClipGradNorm is null || (ClipGradNorm > 0 && double.IsFinite(ClipGradNorm.Value)), nameof(ClipGradNorm), ClipGradNorm, "must be a positive number or null");
        Check(AccumulationSteps >= 1, nameof(AccumulationSteps), AccumulationSteps, "must be >= 1");
        Check(FreezeEpochs >= 0, nameof(FreezeEpochs), FreezeEpochs, "must be >= 0");
        Check(DiscriminativeLearningRateRatio is null || (DiscriminativeLearningRateRatio >= 1 && double.IsFinite(DiscriminativeLearningRateRatio.Value)),
            nameof(DiscriminativeLearningRateRatio), DiscriminativeLearningRateRatio, "must be >= 1 (the head's rate over the stem's) or null");
        Check(LayerDecay is null || (LayerDecay > 0 && LayerDecay <= 1), nameof(LayerDecay), LayerDecay, "must be in (0, 1] or null");
        Check(CheckpointDirectory is null || (CheckpointDirectory.Length > 0 && !File.Exists(CheckpointDirectory)), nameof(CheckpointDirectory), CheckpointDirectory,
            "must be a folder (created if missing), not a file");
        Check(CheckpointsKept >= 1, nameof(CheckpointsKept), CheckpointsKept, "must be >= 1");
        Check(CheckpointEverySteps is null || CheckpointEverySteps >= 1, nameof(CheckpointEverySteps), CheckpointEverySteps, "must be >= 1 or null");
        Check(ResumeFrom is null || File.Exists(ResumeFrom) || Directory.Exists(ResumeFrom), nameof(ResumeFrom), ResumeFrom,
            "must be a checkpoint file or the folder a run wrote its checkpoints to");
        Check(LayerDecay is null || DiscriminativeLearningRateRatio is null, nameof(LayerDecay), LayerDecay,
            "cannot be combined with DiscriminativeLearningRateRatio: choose one way of spreading the rates");
    }
}
