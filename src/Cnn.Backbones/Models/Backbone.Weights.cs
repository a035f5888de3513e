using Cnn.Backbones.Weights;
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
        using var source = Prepare(weights);
        try
        {
            return StateDictLoader.Load(this, source, strict);
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
        using var adapted = Prepare(weights);
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
            return StateDictLoader.Load(this, adapted, strict: true);
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
