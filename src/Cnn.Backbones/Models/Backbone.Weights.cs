using Cnn.Backbones.Compute;
using Cnn.Backbones.Weights;
using Cnn.Backbones.Weights.Catalog;
using Cnn.Backbones.Weights.Timm;
using static TorchSharp.torch;

namespace Cnn.Backbones.Models;

public abstract partial class Backbone
{
    /// <summary>
    /// Loads a weight file (<c>.pth</c> or <c>.safetensors</c>) into the model. A 3-channel first convolution
    /// (<see cref="PretrainedConfig"/>.FirstConv) is adapted to <see cref="InChannels"/> first (timm's <c>adapt_input_conv</c>).
    /// </summary>
    /// <param name="path">Weight file.</param>
    /// <param name="strict">
    /// True: every entry must match, and a classifier for another class count fails with <see cref="ClassifierMismatchException"/>
    /// (nothing is loaded). False: load what fits; a classifier of another size is skipped and reported in
    /// <see cref="WeightLoadReport.ShapeMismatches"/> (or <see cref="WeightLoadReport.UnexpectedKeys"/> when the model has none).
    /// </param>
    /// <returns>What was loaded and skipped.</returns>
    /// <exception cref="WeightLoadException">Strict mode and the body's entries do not match.</exception>
    /// <exception cref="ClassifierMismatchException">Strict mode and the file's classifier has another class count.</exception>
    /// <exception cref="Onnx.OnnxWeightsException">The file is an ONNX model whose initializers do not fit (the message advises <c>cnn import</c>).</exception>
    public WeightLoadReport LoadWeights(string path, bool strict = true)
    {
        using var weights = WeightFile.Load(path);
        try
        {
            return LoadWeights(weights, strict);
        }
        catch (WeightLoadException ex) when (WeightFile.Detect(path) == WeightFile.Format.Onnx)
        {
            throw new Onnx.OnnxWeightsException(path, GetName(), ex);
        }
    }

    /// <summary>As <see cref="LoadWeights(string, bool)"/>, from weights already in memory (they are not modified).</summary>
    /// <param name="weights">The weights.</param>
    /// <param name="strict">See <see cref="LoadWeights(string, bool)"/>.</param>
    public WeightLoadReport LoadWeights(StateDict weights, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(weights);
        UnfoldBatchNorm(); // folded weights would be a snapshot of the old ones
        using var converted = FromForeignLayout(weights, out var foreignMap);
        using var source = Prepare(converted ?? weights);
        try
        {
            var report = StateDictLoader.Load(this, source, strict);
            AdoptArchitectureOf(foreignMap);
            return report;
        }
        catch (WeightLoadException ex) when (FileClassifierClasses(source) is { } fileClasses && fileClasses != NumClasses)
        {
            throw new ClassifierMismatchException(GetName(), PretrainedConfig.Classifier, fileClasses, NumClasses, FeaturesOnly, ex);
        }
    }

    /// <summary>
    /// Loads pretrained weights for fine-tuning, as timm does: the body must match exactly; the classifier is loaded when its
    /// class count equals <see cref="NumClasses"/> and otherwise (or when the file has none) keeps its fresh initialisation; the first convolution is adapted
    /// to <see cref="InChannels"/>. Nothing is loaded when the body does not match.
    /// </summary>
    /// <param name="path">Weight file.</param>
    /// <returns>The load report (the kept head counts as loaded).</returns>
    /// <exception cref="WeightLoadException">The body's entries do not match the file.</exception>
    /// <exception cref="Onnx.OnnxWeightsException">The file is an ONNX model whose initializers do not fit (the message advises <c>cnn import</c>).</exception>
    public WeightLoadReport LoadPretrained(string path)
    {
        using var weights = WeightFile.Load(path);
        UnfoldBatchNorm();
        using var converted = FromForeignLayout(weights, out var foreignMap);
        using var adapted = Prepare(converted ?? weights);
        if (FileClassifierClasses(adapted) != NumClasses) // another class count, or a headless file
        {
            // The main classifier and any auxiliary classifiers' final layers are treated alike.
            var prefixes = ClassifierPrefixes.ToArray();
            bool IsHead(string key) => prefixes.Any(p => key.StartsWith(p, StringComparison.Ordinal));
            foreach (var key in adapted.Keys.Where(IsHead).ToList())
                adapted.Remove(key);
            // Give the loader the model's own fresh heads so the strict check covers exactly the body.
            foreach (var (key, tensor) in state_dict().Where(e => IsHead(e.Key)))
                adapted.Add(key, tensor.detach().clone());
        }
        try
        {
            var report = StateDictLoader.Load(this, adapted, strict: true);
            AdoptArchitectureOf(foreignMap);
            return report;
        }
        catch (WeightLoadException ex) when (WeightFile.Detect(path) == WeightFile.Format.Onnx)
        {
            throw new Onnx.OnnxWeightsException(path, GetName(), ex);
        }
        catch (WeightLoadException ex)
        {
            throw new WeightLoadException(ex.Report, path, GetName());
        }
    }

    /// <summary>
    /// How timm's keys map onto this model's: the <see cref="ModelDefinition.TimmKeyMap"/> of the registered model of this name, or
    /// null when the model is not registered or timm has no such architecture.
    /// </summary>
    public ICheckpointKeyMap? TimmKeyMap => ModelRegistry.Exists(GetName()) ? ModelRegistry.GetDefinition(GetName()).TimmKeyMap : null;

    /// <summary>
    /// The model's weights (parameters and persistent buffers, detached CPU copies) in <paramref name="layout"/>: this library's
    /// own keys, or timm's (<see cref="TimmKeyMap"/>), which timm's <c>load_state_dict(strict=True)</c> accepts for the same
    /// architecture. The caller disposes the result.
    /// </summary>
    /// <param name="layout">The key layout.</param>
    /// <exception cref="NotSupportedException">timm has no such architecture (<see cref="TimmKeyMap"/> is null).</exception>
    /// <remarks>
    /// timm's network for MobileNetV3, EfficientNet-B5..B7 and EfficientNetV2 uses BatchNorm eps 1e-5; a model that was built
    /// here with torchvision's 1e-3 and not loaded from a timm checkpoint gives slightly different outputs in timm (about 1e-5
    /// relative).
    /// </remarks>
    public StateDict StateDictIn(WeightLayout layout)
    {
        var own = StateDict.FromModule(this);
        if (layout == WeightLayout.Native) return own;
        using (own)
        {
            var map = TimmKeyMap ?? throw new NotSupportedException(
                $"{GetName()} has no timm layout: timm has no such architecture (or its keys are not mapped). Save it with {nameof(WeightLayout)}.{nameof(WeightLayout.Native)}.");
            return map.ToForeign(own);
        }
    }

    /// <summary>
    /// Saves the weights as a <c>.safetensors</c> file in <paramref name="layout"/> (see <see cref="StateDictIn"/>); the file is
    /// written under a temporary name and moved into place, so a failed save leaves no partial file. timm reads the
    /// <see cref="WeightLayout.Timm"/> file with <c>timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=path))</c>.
    /// </summary>
    /// <param name="path">Destination file.</param>
    /// <param name="layout">The key layout (default: this library's).</param>
    /// <exception cref="NotSupportedException"><see cref="WeightLayout.Timm"/> for a model timm does not have.</exception>
    public void SaveWeights(string path, WeightLayout layout = WeightLayout.Native)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var weights = StateDictIn(layout);
        SafeTensors.Write(path, weights, new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>
    /// A copy of <paramref name="weights"/> in this library's layout when they are in timm's (decided from the keys by
    /// <see cref="TimmKeyMap"/>), else null; <paramref name="map"/> is the map used.
    /// </summary>
    private StateDict? FromForeignLayout(StateDict weights, out ICheckpointKeyMap? map)
    {
        map = TimmKeyMap;
        if (map is null || !map.IsForeignLayout(weights.Keys.ToArray()))
        {
            map = null;
            return null;
        }
        return map.ToOurs(weights);
    }

    /// <summary>After a foreign checkpoint loaded: take the foreign network's BatchNorm eps, so the model computes what it did.</summary>
    private void AdoptArchitectureOf(ICheckpointKeyMap? map)
    {
        if (map is not RuleKeyMap { BatchNormEps: { } eps }) return;
        foreach (var (_, module) in named_modules())
            if (module is FoldableBatchNorm2d norm) norm.eps = eps;
    }

    /// <summary>
    /// State-dict key prefixes of every classification layer whose size follows <see cref="NumClasses"/>: the main classifier
    /// (<see cref="PretrainedConfig"/>.Classifier) and, where a family has them, the final layers of its auxiliary classifiers.
    /// <see cref="LoadPretrained"/> keeps all of them freshly initialised when the file's class count differs.
    /// </summary>
    protected virtual IEnumerable<string> ClassifierPrefixes => [PretrainedConfig.Classifier + "."];

    /// <summary>
    /// Rewrites a copy of a weight file's entries before they are matched against the model (e.g. DenseNet's old-style
    /// <c>norm.1</c> keys, or dropping auxiliary-head entries the model was built without, as torchvision does). The default
    /// changes nothing.
    /// </summary>
    /// <param name="weights">A private copy of the file's entries; rename or remove entries in place.</param>
    protected virtual void RemapWeights(StateDict weights) { }

    /// <summary>
    /// A private copy of <paramref name="weights"/> with the first conv adapted, <see cref="RemapWeights"/> and then
    /// <see cref="AdaptCheckpoint"/> applied.
    /// </summary>
    private StateDict Prepare(StateDict weights)
    {
        var copy = AdaptFirstConv(weights) ?? Copy(weights);
        try
        {
            RemapWeights(copy);
            var own = AdaptCheckpoint(copy);
            if (own is null) return copy;
            copy.Dispose(); // own holds its own handles (aliases keep the storage alive)
            return own;
        }
        catch
        {
            copy.Dispose();
            throw;
        }
    }

    /// <summary>Classes of the file's classifier (rows of <c>{Classifier}.weight</c>), or null when the file has none.</summary>
    private int? FileClassifierClasses(StateDict weights) =>
        weights.TryGetValue(PretrainedConfig.Classifier + ".weight", out var w) && w.dim() >= 1 ? (int)w.shape[0] : null;

    /// <summary>
    /// Adapts a checkpoint to this model's architecture before loading, e.g. resampling a Vision Transformer's position embedding
    /// made for another image size. Returns a new state dict (entries may be <c>alias()</c>es of <paramref name="weights"/>'s), or
    /// null when nothing needs to change. The default changes nothing.
    /// </summary>
    /// <param name="weights">The checkpoint (after first-convolution adaptation); not modified.</param>
    protected virtual StateDict? AdaptCheckpoint(StateDict weights) => null;

    /// <summary>
    /// A copy of <paramref name="weights"/> whose first-conv weight is adapted to <see cref="InChannels"/>, or null when no
    /// adaptation is needed (no such entry, or the channel counts already agree).
    /// </summary>
    private StateDict? AdaptFirstConv(StateDict weights)
    {
        string key = PretrainedConfig.FirstConv + ".weight";
        if (!weights.TryGetValue(key, out var weight) || weight.dim() != 4 || weight.shape[1] == InChannels) return null;
        var copy = new StateDict();
        try
        {
            foreach (var (name, tensor) in weights)
                copy.Add(name, name == key ? InputChannelAdapter.Adapt(tensor, InChannels) : tensor.alias());
            return copy;
        }
        catch
        {
            copy.Dispose();
            throw;
        }
    }

    private static StateDict Copy(StateDict weights)
    {
        var copy = new StateDict();
        foreach (var (name, tensor) in weights) copy.Add(name, tensor.alias());
        return copy;
    }
}

/// <summary>
/// A strict weight load failed because the file's classifier is for a different number of classes than the model.
/// Nothing was loaded.
/// </summary>
public sealed class ClassifierMismatchException : Exception
{
    internal ClassifierMismatchException(string model, string classifier, int fileClasses, int modelClasses, bool featuresOnly, WeightLoadException inner)
        : base(
            $"The weight file's classifier '{classifier}' has {fileClasses} classes but {model} " +
            (featuresOnly ? "was built features-only (no classifier)" : modelClasses == 0 ? "has no classifier (NumClasses = 0)" : $"has NumClasses = {modelClasses}") +
            ", so nothing was loaded. Load with strict: false to skip the classifier (the report lists it), use LoadPretrained / " +
            $"ModelOptions.WeightsPath to keep a fresh head, or create the model with NumClasses = {fileClasses}. Details: {inner.Report.Describe(10, "; ")}",
            inner)
    {
        FileClasses = fileClasses;
        ModelClasses = modelClasses;
        Report = inner.Report;
    }

    /// <summary>Classes of the file's classifier.</summary>
    public int FileClasses { get; }

    /// <summary>Classes of the model's classifier (0 when it has none).</summary>
    public int ModelClasses { get; }

    /// <summary>The failed strict load's report.</summary>
    public WeightLoadReport Report { get; }
}
