using Cnn.Backbones.Compute;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Models;

/// <summary>
/// Base class of every backbone: a classification CNN split, as in timm, into <see cref="ForwardFeatures"/> (unpooled last
/// feature map) and <see cref="ForwardHead"/> (global pool, dropout, classifier), with feature stages described by
/// <see cref="FeatureInfo"/>, stage groups for freezing and per-stage learning rates, and weight loading.
/// </summary>
/// <remarks>
/// <para>A family implements the modules (registered as fields with torchvision's names), <see cref="ForwardStage"/> for each
/// entry of <see cref="FeatureInfo"/>, <see cref="Classifier"/> and <see cref="StageGroups"/>. Everything else—feature-only
/// mode, head reset, freezing, state-dict order, weight loading—lives here.</para>
/// <para><see cref="state_dict"/> is overridden to give PyTorch's key order (per module: parameters, then buffers, then
/// children) rather than TorchSharp's (all parameters, then all buffers), so keys line up with torchvision checkpoints.</para>
/// </remarks>
public abstract partial class Backbone : nn.Module<Tensor, Tensor>
{
    private readonly HashSet<string> _frozenStages = new(StringComparer.Ordinal);

    /// <summary>Initialises the shared state; call <c>RegisterComponents()</c> at the end of the derived constructor.</summary>
    /// <param name="name">Model name (e.g. <c>resnet50</c>).</param>
    /// <param name="options">Creation options; validated here.</param>
    /// <param name="numFeatures">Channels of the last feature map (input width of the classifier).</param>
    /// <param name="featureInfo">Every feature stage, shallow to deep; the last one is <see cref="ForwardFeatures"/>'s output.</param>
    /// <param name="pretrainedConfig">Configuration of the reference pretrained weights.</param>
    /// <param name="defaultDropRate">
    /// Dropout before the classifier when <see cref="ModelOptions.DropRate"/> is null: the architecture's own value (e.g. torchvision's
    /// 0.2 for EfficientNet-B0), 0 for architectures without one.
    /// </param>
    protected Backbone(string name, ModelOptions options, int numFeatures, IReadOnlyList<FeatureInfo> featureInfo, PretrainedConfig pretrainedConfig,
        double defaultDropRate = 0)
        : base(name)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (featureInfo.Count == 0) throw new ArgumentException("A backbone needs at least one feature stage.", nameof(featureInfo));
        InChannels = options.InChannels;
        NumClasses = options.FeaturesOnly ? 0 : options.NumClasses;
        NumFeatures = numFeatures;
        DropRate = options.DropRate ?? defaultDropRate;
        FeaturesOnly = options.FeaturesOnly;
        FeatureInfo = featureInfo;
        OutIndices = options.ResolveOutIndices(featureInfo.Count);
        PretrainedConfig = pretrainedConfig;
    }

    /// <summary>Input channels the first convolution expects.</summary>
    public int InChannels { get; }

    /// <summary>Classes of the classifier; 0 when there is none (pooled features out, or features-only mode).</summary>
    public int NumClasses { get; private set; }

    /// <summary>Channels of the last feature map, i.e. the length of the pooled feature vector.</summary>
    public int NumFeatures { get; }

    /// <summary>Dropout probability before the classifier (<see cref="ModelOptions.DropRate"/>, or the architecture's default).</summary>
    public double DropRate { get; }

    /// <summary>True when built as a feature extractor: no pooling and no classifier (timm's <c>features_only</c>).</summary>
    public bool FeaturesOnly { get; }

    /// <summary>Every feature stage (channels, reduction, module), shallow to deep, as timm's <c>feature_info</c>.</summary>
    public IReadOnlyList<FeatureInfo> FeatureInfo { get; }

    /// <summary>Indices into <see cref="FeatureInfo"/> of the maps <see cref="ForwardStages"/> returns (ascending, non-negative).</summary>
    public IReadOnlyList<int> OutIndices { get; }

    /// <summary>The <see cref="FeatureInfo"/> entries selected by <see cref="OutIndices"/>, in output order.</summary>
    public IReadOnlyList<FeatureInfo> OutFeatureInfo => OutIndices.Select(i => FeatureInfo[i]).ToArray();

    /// <summary>Configuration of the reference pretrained weights (input size, normalisation, crop, first conv, classifier).</summary>
    public PretrainedConfig PretrainedConfig { get; }

    /// <summary>
    /// Parameter groups by stage, input to output (for ResNet: <c>stem</c>, <c>layer1</c>..<c>layer4</c>, <c>head</c>). Every
    /// parameter belongs to exactly one group.
    /// </summary>
    public abstract IReadOnlyList<StageGroup> StageGroups { get; }

    /// <summary>Names of the stages currently frozen by <see cref="Freeze"/> or <see cref="FreezeUpTo"/>.</summary>
    public IReadOnlySet<string> FrozenStages => _frozenStages;

    /// <summary>The classifier module (registered under <see cref="PretrainedConfig"/>.Classifier); null in features-only mode.</summary>
    protected abstract nn.Module<Tensor, Tensor>? Classifier { get; set; }

    /// <summary>Runs feature stage <paramref name="index"/> (an index into <see cref="FeatureInfo"/>) on the previous stage's output.</summary>
    /// <param name="index">Stage index, 0-based.</param>
    /// <param name="x">The input image for stage 0, otherwise the output of stage <c>index - 1</c>.</param>
    protected abstract Tensor ForwardStage(int index, Tensor x);

    /// <summary>Creates a freshly initialised classifier for <paramref name="numClasses"/> classes (0: identity).</summary>
    /// <param name="numClasses">Number of classes, at least 0.</param>
    /// <param name="device">Device for the new parameters, or null for the default.</param>
    protected virtual nn.Module<Tensor, Tensor> CreateClassifier(int numClasses, Device? device = null) =>
        numClasses == 0 ? nn.Identity() : Ops.Linear(NumFeatures, numClasses, device: device);

    /// <summary>The unpooled output of the last stage and <see cref="FinishFeatures"/>, shape [N, <see cref="NumFeatures"/>, H/r, W/r]
    /// for CNNs.</summary>
    /// <param name="x">Input batch [N, C, H, W] with C = <see cref="InChannels"/>.</param>
    /// <exception cref="ArgumentException">The input is not [N, C, H, W] with C = <see cref="InChannels"/>.</exception>
    public Tensor ForwardFeatures(Tensor x) => Computed(x, input =>
    {
        ValidateInput(input);
        using var last = RunStages(input, FeatureInfo.Count - 1, collect: null);
        return FinishFeatures(last);
    });

    /// <summary>
    /// What <see cref="ForwardFeatures"/> runs after the last feature stage: nothing by default (an alias of the stage's map);
    /// families with layers between their last stage and the head (torchvision's final 1×1 convolution, ViT's <c>encoder.ln</c>)
    /// override it.
    /// </summary>
    /// <param name="lastStage">The output of the last feature stage.</param>
    protected virtual Tensor FinishFeatures(Tensor lastStage) => lastStage.alias();

    /// <summary>
    /// <see cref="ForwardStages"/> and <see cref="ForwardFeatures"/> of the same batch, from one pass through the stages when
    /// <see cref="OutIndices"/> ends with the last stage (as by default).
    /// </summary>
    /// <param name="x">Input batch [N, C, H, W] with C = <see cref="InChannels"/>.</param>
    public (IReadOnlyList<Tensor> Stages, Tensor Features) ForwardStagesAndFeatures(Tensor x) => Computed(x, input =>
    {
        var stages = ForwardStages(input);
        var features = OutIndices[^1] == FeatureInfo.Count - 1 ? FinishFeatures(stages[^1]) : ForwardFeatures(input);
        return (stages, features);
    }, result => (result.stages.Select(ComputeSettings.Finish).ToArray(), ComputeSettings.Finish(result.features)));

    /// <summary>
    /// The maps of the stages in <see cref="OutIndices"/>, shallow to deep (timm's <c>features_only</c> output). Only the stages
    /// needed are run.
    /// </summary>
    /// <param name="x">Input batch [N, C, H, W] with C = <see cref="InChannels"/>.</param>
    /// <exception cref="ArgumentException">The input is not [N, C, H, W] with C = <see cref="InChannels"/>.</exception>
    public IReadOnlyList<Tensor> ForwardStages(Tensor x) => Computed(x, input =>
    {
        ValidateInput(input);
        var wanted = new HashSet<int>(OutIndices);
        var outputs = new List<Tensor>(OutIndices.Count);
        // The last stage run is OutIndices[^1], so every tensor RunStages does not dispose ends up in outputs.
        RunStages(input, OutIndices[^1], collect: (i, t) =>
        {
            if (!wanted.Contains(i)) return false;
            outputs.Add(t);
            return true;
        });
        return (IReadOnlyList<Tensor>)outputs;
    }, outputs => outputs.Select(ComputeSettings.Finish).ToArray());

    /// <summary>
    /// <see cref="ForwardPool"/> (global average pool for CNNs), dropout (when training and <see cref="DropRate"/> &gt; 0), then
    /// the classifier.
    /// </summary>
    /// <param name="x">The output of <see cref="ForwardFeatures"/> (a map [N, <see cref="NumFeatures"/>, h, w] for CNNs).</param>
    /// <param name="preLogits">Return the pooled (and dropped-out) vector, the classifier's input, instead of logits.</param>
    /// <exception cref="InvalidOperationException">The model was built features-only.</exception>
    /// <remarks>Families whose head is more than pool + linear (AlexNet/VGG's MLP, SqueezeNet's 1×1-conv classifier, LeNet's
    /// flatten + fully connected layers) override this; <paramref name="preLogits"/> then returns the classifier's input vector.</remarks>
    public Tensor ForwardHead(Tensor x, bool preLogits = false) => Computed(x, input => ForwardHeadCore(input, preLogits));

    /// <summary>
    /// What <see cref="ForwardHead"/> runs (under the backbone's <see cref="Compute"/> settings): <see cref="ForwardPool"/>, dropout
    /// and the classifier by default.
    /// </summary>
    /// <param name="x">The output of <see cref="ForwardFeatures"/>.</param>
    /// <param name="preLogits">Return the classifier's input vector instead of logits.</param>
    protected virtual Tensor ForwardHeadCore(Tensor x, bool preLogits)
    {
        var classifier = Classifier ?? throw new InvalidOperationException(
            $"{GetName()} was built with FeaturesOnly = true and has no head; use ForwardStages or ForwardFeatures.");
        using var scope = NewDisposeScope();
        var pooled = ForwardPool(x);
        var result = preLogits ? Dropout(pooled) : ForwardClassifier(pooled);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// True when <see cref="ForwardHead"/> is this class's: <see cref="ForwardPool"/>, then <see cref="ForwardClassifier"/> on the
    /// pooled vector, so that a head can be trained on cached pre-logits (<c>ForwardHead(x, preLogits: true)</c> in eval mode).
    /// False for families whose head is organised otherwise (AlexNet/VGG's MLP, SqueezeNet's convolution, LeNet's layers).
    /// </summary>
    public virtual bool HeadSplitsAtPreLogits => true;

    /// <summary>
    /// True when <see cref="ForwardTrain"/> adds auxiliary classifier outputs in training mode (GoogLeNet's and Inception v3's
    /// auxiliary heads).
    /// </summary>
    public virtual bool HasAuxiliaryHeads => false;

    /// <summary>
    /// The last part of <see cref="ForwardHead"/> where <see cref="HeadSplitsAtPreLogits"/>: dropout (when training and
    /// <see cref="DropRate"/> &gt; 0), then the classifier, on the pooled vector [N, <see cref="NumFeatures"/>].
    /// </summary>
    /// <param name="pooled">The pooled features (eval-mode <c>ForwardHead(x, preLogits: true)</c>).</param>
    /// <exception cref="InvalidOperationException">The model was built features-only.</exception>
    public Tensor ForwardClassifier(Tensor pooled) => Computed(pooled, input =>
    {
        var classifier = Classifier ?? throw new InvalidOperationException(
            $"{GetName()} was built with FeaturesOnly = true and has no head; use ForwardStages or ForwardFeatures.");
        using var scope = NewDisposeScope();
        return classifier.call(Dropout(input)).MoveToOuterDisposeScope();
    });

    private Tensor Dropout(Tensor pooled) => DropRate > 0 ? nn.functional.dropout(pooled, DropRate, training) : pooled.alias();

    /// <summary>
    /// The head before dropout and classifier: global average pooling to [N, <see cref="NumFeatures"/>] by default. Families whose
    /// head has more (a norm, a hidden layer, token pooling) override it; its output is what <see cref="ForwardHead"/> returns
    /// with <c>preLogits</c>.
    /// </summary>
    /// <param name="x">The output of <see cref="ForwardFeatures"/>.</param>
    protected virtual Tensor ForwardPool(Tensor x) => nn.functional.adaptive_avg_pool2d(x, [1, 1]).flatten(1);

    /// <summary>
    /// Logits [N, <see cref="NumClasses"/>]; pooled features [N, <see cref="NumFeatures"/>] when <see cref="NumClasses"/> is 0;
    /// the last feature map in features-only mode.
    /// </summary>
    /// <param name="x">Input batch [N, C, H, W] with C = <see cref="InChannels"/>.</param>
    public override Tensor forward(Tensor x) => Computed(x, input =>
    {
        if (FeaturesOnly) return ForwardFeatures(input);
        using var features = ForwardFeatures(input);
        return ForwardHead(features);
    });

    /// <summary>
    /// The training-time forward pass: the logits plus any auxiliary classifier outputs with their loss weights
    /// (torchvision's GoogLeNet adds two aux heads weighted 0.3, Inception v3 one weighted 0.4). Trainers add
    /// <c>weight × loss(aux)</c> to the main loss in training mode and ignore the auxiliaries in evaluation. Most backbones
    /// have none: the default returns <see cref="forward"/>'s logits and no auxiliaries.
    /// </summary>
    /// <param name="x">Input batch [N, C, H, W] with C = <see cref="InChannels"/>.</param>
    public TrainingOutput ForwardTrain(Tensor x) => Computed(x, ForwardTrainCore,
        output => new TrainingOutput(ComputeSettings.Finish(output.Logits),
            output.Auxiliary.Select(a => a with { Logits = ComputeSettings.Finish(a.Logits) }).ToArray()));

    /// <summary>What <see cref="ForwardTrain"/> runs (under <see cref="Compute"/>): <see cref="forward"/>'s logits and no auxiliaries by default.</summary>
    /// <param name="x">Input batch [N, C, H, W] with C = <see cref="InChannels"/>.</param>
    protected virtual TrainingOutput ForwardTrainCore(Tensor x) => new(call(x), Array.Empty<AuxiliaryOutput>());

    /// <summary>The classifier head: a linear layer, or identity when <see cref="NumClasses"/> is 0.</summary>
    /// <exception cref="InvalidOperationException">The model was built features-only.</exception>
    public nn.Module<Tensor, Tensor> GetClassifier() =>
        Classifier ?? throw new InvalidOperationException($"{GetName()} was built with FeaturesOnly = true and has no classifier.");

    /// <summary>
    /// Replaces the classifier with a freshly initialised one for <paramref name="numClasses"/> classes (0: identity, so the
    /// model returns pooled features). Only the head changes; it keeps the model's device, and stays frozen if the head stage is.
    /// </summary>
    /// <param name="numClasses">New number of classes, at least 0.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="numClasses"/> is negative.</exception>
    /// <exception cref="InvalidOperationException">The model was built features-only.</exception>
    public void ResetClassifier(int numClasses)
    {
        if (numClasses < 0)
            throw new ArgumentOutOfRangeException(nameof(numClasses), numClasses, $"numClasses must be >= 0 (0 = no classifier); got {numClasses}.");
        var old = GetClassifier();
        var device = parameters().FirstOrDefault()?.device;
        var head = CreateClassifier(numClasses, device);
        ReplaceClassifier(head);
        Classifier = head;
        old.Dispose();
        NumClasses = numClasses;
        ResetAuxiliaryClassifiers(numClasses, device);
        ApplyFreezeState();
    }

    /// <summary>
    /// Called by <see cref="ResetClassifier"/> after the main head is replaced: families with auxiliary classifiers (GoogLeNet,
    /// Inception v3) replace their final layers for <paramref name="numClasses"/> classes too. The default does nothing.
    /// </summary>
    /// <param name="numClasses">The new number of classes (0: the auxiliary outputs are switched off).</param>
    /// <param name="device">Device of the model's parameters, or null.</param>
    protected virtual void ResetAuxiliaryClassifiers(int numClasses, Device? device) { }

    /// <summary>
    /// Registers <paramref name="head"/> in place of the current classifier under <see cref="PretrainedConfig"/>.Classifier. The
    /// default handles a classifier registered directly on the model (<c>fc</c>) or inside a <see cref="ModuleContainer"/>
    /// (<c>classifier.1</c>, <c>heads.head</c>).
    /// </summary>
    /// <param name="head">The new classifier.</param>
    protected virtual void ReplaceClassifier(nn.Module<Tensor, Tensor> head)
    {
        string name = PretrainedConfig.Classifier;
        int dot = name.LastIndexOf('.');
        if (dot < 0)
        {
            register_module(name, null!); // unregister the old head, then register the new one under the same name
            register_module(name, head);
            return;
        }
        string parentName = name[..dot];
        var parent = named_modules().FirstOrDefault(m => m.name == parentName).module as ModuleContainer
            ?? throw new InvalidOperationException($"{GetName()}: the classifier's parent '{parentName}' is not a {nameof(ModuleContainer)}; override {nameof(ReplaceClassifier)}.");
        parent.Set(name[(dot + 1)..], head);
    }

    /// <summary>
    /// The state dict in PyTorch's order (for every module: its parameters, then its persistent buffers, then its children),
    /// which is the order torchvision checkpoints use.
    /// </summary>
    /// <param name="destination">Dictionary to add to, or null for a new one.</param>
    /// <param name="prefix">Prefix for every key (e.g. <c>"backbone."</c>), or null.</param>
    public override Dictionary<string, Tensor> state_dict(Dictionary<string, Tensor>? destination = null, string? prefix = null)
    {
        destination ??= new Dictionary<string, Tensor>();
        AddInTorchOrder(this, prefix ?? string.Empty, destination);
        return destination;
    }

    private static void AddInTorchOrder(nn.Module module, string prefix, Dictionary<string, Tensor> destination)
    {
        foreach (var (name, parameter) in module.named_parameters(recurse: false))
            destination.TryAdd(prefix + name, parameter);
        foreach (var (name, buffer) in module.named_buffers(recurse: false, include_nonpersistent: false))
            destination.TryAdd(prefix + name, buffer);
        foreach (var (name, child) in module.named_children())
            AddInTorchOrder(child, prefix + name + ".", destination);
    }

    /// <summary>The parameters of every stage of <see cref="StageGroups"/>, for per-stage optimizer settings.</summary>
    public IReadOnlyList<StageParameters> GetStageParameters()
    {
        var all = named_parameters().ToList();
        return StageGroups
            .Select(g => new StageParameters(g, all.Where(p => g.Contains(p.name)).Select(p => (p.name, p.parameter)).ToArray()))
            .ToArray();
    }

    /// <summary>
    /// Freezes the stages with the given names: their parameters stop requiring gradients and their BatchNorm layers stay in
    /// eval mode (running statistics fixed) even when the model is put in training mode.
    /// </summary>
    /// <param name="stages">Names from <see cref="StageGroups"/>.</param>
    /// <exception cref="ArgumentException">A name is not a stage of this model.</exception>
    public void Freeze(params string[] stages)
    {
        foreach (var stage in stages) _frozenStages.Add(FindStage(stage).Name);
        ApplyFreezeState();
    }

    /// <summary>Freezes every stage from the first up to and including <paramref name="stage"/> (an index into <see cref="StageGroups"/>).</summary>
    /// <param name="stage">Last stage to freeze: 0 = first stage (stem); <c>StageGroups.Count - 1</c> freezes everything.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="stage"/> is not a valid index.</exception>
    public void FreezeUpTo(int stage)
    {
        var groups = StageGroups;
        if (stage < 0 || stage >= groups.Count)
            throw new ArgumentOutOfRangeException(nameof(stage), stage,
                $"stage must be in 0..{groups.Count - 1} ({string.Join(", ", groups.Select((g, i) => $"{i} = {g.Name}"))}); got {stage}.");
        Freeze(groups.Take(stage + 1).Select(g => g.Name).ToArray());
    }

    /// <summary>Unfreezes the given stages, or every stage when none is given.</summary>
    /// <param name="stages">Names from <see cref="StageGroups"/>; empty for all.</param>
    public void Unfreeze(params string[] stages)
    {
        if (stages.Length == 0) _frozenStages.Clear();
        foreach (var stage in stages) _frozenStages.Remove(FindStage(stage).Name);
        ApplyFreezeState();
    }

    /// <summary>Sets training mode; BatchNorm layers of frozen stages stay in eval mode.</summary>
    /// <param name="train">True for training mode, false for eval mode.</param>
    public override void train(bool train = true)
    {
        base.train(train);
        if (!train || _frozenStages.Count == 0) return;
        foreach (var (name, module) in named_modules())
            if (module is NormBase && IsFrozen(name)) module.eval();
    }

    private bool IsFrozen(string name) => StageGroups.Any(g => _frozenStages.Contains(g.Name) && g.Contains(name));

    private StageGroup FindStage(string name) =>
        StageGroups.FirstOrDefault(g => g.Name == name) ?? throw new ArgumentException(
            $"'{name}' is not a stage of {GetName()}; stages: {string.Join(", ", StageGroups.Select(g => g.Name))}.", nameof(name));

    private void ApplyFreezeState()
    {
        foreach (var (name, parameter) in named_parameters())
            parameter.requires_grad = !IsFrozen(name);
        train(training);
    }

    /// <summary>Throws unless <paramref name="x"/> is [N, C, H, W] with C = <see cref="InChannels"/>.</summary>
    /// <param name="x">Input batch.</param>
    protected void ValidateInput(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() != 4 || x.shape[1] != InChannels)
            throw new ArgumentException(
                $"{GetName()} expects input of shape [N, C, H, W] with C = {InChannels}; got [{string.Join(", ", x.shape)}].", nameof(x));
        if (x.shape[2] < MinInputSize || x.shape[3] < MinInputSize)
            throw new ArgumentException(
                $"{GetName()} needs input of at least {MinInputSize}×{MinInputSize} pixels (its pretrained size is " +
                $"{PretrainedConfig.InputSize.Height}×{PretrainedConfig.InputSize.Width}); got {x.shape[2]}×{x.shape[3]}.", nameof(x));
    }

    /// <summary>
    /// Smallest height and width the network accepts (torchvision's <c>min_size</c> where it states one); smaller inputs are
    /// rejected by <see cref="ValidateInput"/> with a clear message instead of failing deep inside a pooling layer. Default 1.
    /// </summary>
    public virtual int MinInputSize => 1;

    /// <summary>
    /// The one input side the network takes, where its position embeddings fix it (Vision Transformers, CLIP's image towers:
    /// their <see cref="ModelOptions.ImageSize"/>); null for networks that take any size from <see cref="MinInputSize"/> up.
    /// </summary>
    public virtual int? FixedInputSize => null;

    /// <summary>Runs stages 0..<paramref name="last"/>; <paramref name="collect"/> returns true for outputs the caller keeps.</summary>
    private Tensor RunStages(Tensor x, int last, Func<int, Tensor, bool>? collect)
    {
        var h = x;
        bool keep = true; // the caller owns the input
        for (int i = 0; i <= last; i++)
        {
            var next = ForwardStage(i, h);
            if (!keep) h.Dispose();
            h = next;
            keep = collect?.Invoke(i, h) ?? false;
        }
        return h;
    }
}
