using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.Backbones.Weights;
using Cnn.MLNet.Persistence;
using Cnn.MLNet.Networks;
using Cnn.MLNet.Scoring;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;
using static TorchSharp.torch;

namespace Cnn.MLNet.Distillation;

/// <summary>
/// The teacher of a distillation: a trained classifier network with its own preprocessing (size, channels, mean/std) and class
/// names. Create it from a fitted <see cref="CnnClassifierTransformer"/>, a model file saved by <see cref="CnnPipelineFile"/>
/// (<c>cnn train --output</c>), or an architecture name and a weight file. Dispose it to release a network it loaded itself.
/// </summary>
public sealed class DistillationTeacher : IDisposable
{
    private readonly IReadOnlyList<IDisposable> _owned;

    private DistillationTeacher(CnnNetwork network, LabelKeys? labels, int numClasses, ITransformer? pipeline, IReadOnlyList<IDisposable> owned, string description)
    {
        Network = network;
        Labels = labels;
        NumClasses = numClasses;
        Pipeline = pipeline;
        _owned = owned;
        Description = description;
    }

    internal CnnNetwork Network { get; }

    /// <summary>The teacher's label keys, or null when it has no class names (a weight file without <c>classNames</c>).</summary>
    internal LabelKeys? Labels { get; }

    /// <summary>Registered architecture of the teacher network.</summary>
    public string Architecture => Network.Architecture;

    /// <summary>Number of classes the teacher predicts; the student predicts the same.</summary>
    public int NumClasses { get; }

    /// <summary>Class names in the teacher's output order: its label key values, or "0", "1", … when it has none.</summary>
    public IReadOnlyList<string> ClassNames => Labels?.Names ?? Enumerable.Range(0, NumClasses).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();

    /// <summary>Input channels of the teacher's preprocessing.</summary>
    public int InputChannels => Network.Preprocess.Channels;

    /// <summary>Input height × width of the teacher's preprocessing.</summary>
    public (int Height, int Width) InputSize => (Network.Preprocess.Height, Network.Preprocess.Width);

    /// <summary>The whole pipeline of a teacher loaded with <see cref="FromModelFile"/>; null otherwise.</summary>
    public ITransformer? Pipeline { get; }

    /// <summary>Where the teacher came from, for messages (e.g. <c>model file 'teacher.zip' (resnet18, 10 classes)</c>).</summary>
    public string Description { get; }

    /// <summary>A teacher from a fitted classifier. The classifier is used, not copied or disposed.</summary>
    public static DistillationTeacher FromTransformer(CnnClassifierTransformer classifier)
    {
        ArgumentNullException.ThrowIfNull(classifier);
        return new DistillationTeacher(classifier.Network, classifier.Labels, classifier.NumClasses, null, Array.Empty<IDisposable>(),
            $"fitted classifier ({classifier.Architecture}, {classifier.NumClasses} classes)");
    }

    /// <summary>
    /// A teacher from a model file written by <see cref="CnnPipelineFile.Save"/> or <c>cnn train --output</c>: the file's single
    /// CNN classifier stage is the teacher; the loaded pipeline stays available as <see cref="Pipeline"/>.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file cannot be read as a model, or it holds no (or more than one) CNN classifier stage.</exception>
    public static DistillationTeacher FromModelFile(string path, MLContext? mlContext = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Teacher model file '{path}' does not exist.", path);
        ITransformer pipeline;
        try
        {
            pipeline = CnnPipelineFile.Load(mlContext ?? new MLContext(), path, out _);
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not OutOfMemoryException)
        {
            throw new InvalidDataException($"Teacher model file '{path}' cannot be loaded: {ex.Message}", ex);
        }
        var stages = CnnPipelineFile.Stages(pipeline).ToList();
        var disposables = stages.OfType<IDisposable>().ToList();
        var classifiers = stages.OfType<CnnClassifierTransformer>().ToList();
        if (classifiers.Count != 1)
        {
            foreach (var stage in disposables) stage.Dispose();
            string kinds = stages.Count == 0 ? "none" : string.Join(", ", stages.Select(s => s.GetType().Name));
            throw new InvalidDataException(classifiers.Count == 0
                ? $"Teacher model file '{path}' has no CNN classifier stage (its stages: {kinds}). The teacher must be a trained classifier, e.g. the output of 'cnn train' or CnnPipelineFile.Save of a fitted CnnTrainer pipeline."
                : $"Teacher model file '{path}' has {classifiers.Count} CNN classifier stages; it is ambiguous which one is the teacher. Save the teacher's pipeline on its own.");
        }
        var classifier = classifiers[0];
        return new DistillationTeacher(classifier.Network, classifier.Labels, classifier.NumClasses, pipeline, disposables,
            $"model file '{path}' ({classifier.Architecture}, {classifier.NumClasses} classes)");
    }

    /// <summary>
    /// A teacher from a registered architecture and a trained weight file (<c>.pth</c>/<c>.safetensors</c> with its classifier).
    /// The class count and input channels are read from the file; the weights are loaded strictly.
    /// </summary>
    /// <param name="architecture">Registered architecture of the weights (e.g. <c>resnet18</c>).</param>
    /// <param name="weightsPath">The weight file; it must contain the classifier (<c>fc.weight</c> for ResNets).</param>
    /// <param name="classNames">Class names in the classifier's order, or null for "0", "1", ….</param>
    /// <param name="imageSize">Square input size; null uses the architecture's pretrained configuration.</param>
    /// <param name="mean">Normalisation mean per channel; null uses the pretrained configuration's.</param>
    /// <param name="std">Normalisation standard deviation per channel; null uses the pretrained configuration's.</param>
    /// <param name="cropPct">Centre-crop fraction; null uses the pretrained configuration's.</param>
    /// <exception cref="ArgumentException">Unknown architecture, or class names that do not match the classifier.</exception>
    /// <exception cref="FileNotFoundException">The weight file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file cannot be read, has no classifier, or does not fit the architecture.</exception>
    public static DistillationTeacher FromWeights(string architecture, string weightsPath, IReadOnlyList<string>? classNames = null,
        int? imageSize = null, IReadOnlyList<float>? mean = null, IReadOnlyList<float>? std = null, double? cropPct = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(architecture);
        ArgumentException.ThrowIfNullOrWhiteSpace(weightsPath);
        var info = ModelRegistry.Get(architecture);
        if (!File.Exists(weightsPath))
            throw new FileNotFoundException($"Teacher weights file '{weightsPath}' does not exist.", weightsPath);
        TorchRuntime.EnsureLoaded();
        IReadOnlyList<TensorInfo> tensors;
        try
        {
            tensors = WeightFile.Inspect(weightsPath);
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not OutOfMemoryException)
        {
            throw new InvalidDataException($"Teacher weights file '{weightsPath}' cannot be read: {ex.Message}", ex);
        }
        var config = info.DefaultConfig;
        var head = tensors.FirstOrDefault(t => t.Name == config.Classifier + ".weight" && t.Shape.Count == 2);
        if (head is null)
            throw new InvalidDataException(
                $"Teacher weights file '{weightsPath}' has no classifier weights '{config.Classifier}.weight' for {info.Name}: a teacher must be a trained classifier. " +
                "Is the file a headless backbone, or of another architecture?");
        int classes = (int)head.Shape[0];
        if (classes < 2)
            throw new InvalidDataException($"Teacher weights file '{weightsPath}': the classifier has {classes} output(s); a teacher needs at least 2 classes.");
        if (classNames is not null && classNames.Count != classes)
            throw new ArgumentException($"{classNames.Count} class names were given but the teacher's classifier in '{weightsPath}' has {classes} classes.", nameof(classNames));
        var firstConv = tensors.FirstOrDefault(t => t.Name == config.FirstConv + ".weight" && t.Shape.Count == 4);
        int channels = firstConv is null ? config.InputSize.Channels : (int)firstConv.Shape[1];
        if (channels is not (1 or 3))
            throw new InvalidDataException($"Teacher weights file '{weightsPath}': the first convolution takes {channels} channels; images have 1 (grey) or 3 (RGB).");
        var spec = NetworkSpec.For(info.Name, new ModelOptions { NumClasses = classes, InChannels = channels, ImageSize = imageSize }, mean, std, cropPct);
        var network = NetworkBuilder.Build(spec, CPU);
        try
        {
            using var weights = WeightFile.Load(weightsPath);
            StateDictLoader.Load(network.Model, weights, strict: true);
            network.Model.eval();
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not OutOfMemoryException)
        {
            network.Dispose();
            throw new InvalidDataException($"Teacher weights file '{weightsPath}' does not fit {info.Name} ({classes} classes, {channels} channels): {ex.Message}", ex);
        }
        var labels = classNames is null ? null : LabelKeys.FromNames(classes, classNames);
        return new DistillationTeacher(network, labels, classes, null, new IDisposable[] { network },
            $"weights '{weightsPath}' ({info.Name}, {classes} classes)");
    }

    /// <summary>
    /// <c>MapValueToKey</c> that maps class names to keys in the teacher's class order (names it does not know, and empty
    /// strings, become key 0 = unlabelled): the label column a distillation expects.
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="outputColumnName">The key column to produce. Default <c>Label</c>.</param>
    /// <param name="inputColumnName">The text column of class names; null uses <paramref name="outputColumnName"/>.</param>
    public ValueToKeyMappingEstimator MapLabelsToKeys(MLContext mlContext, string outputColumnName = "Label", string? inputColumnName = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        if (Labels?.ValueType is { } type && type != "Text")
            throw new InvalidOperationException(
                $"The teacher's label values are {type}, not text; map labels with the teacher pipeline's own MapValueToKey stage instead.");
        return Data.ImageDataViews.MapLabelsToKeys(mlContext, ClassNames, outputColumnName, inputColumnName);
    }

    /// <summary>
    /// A pipeline that scores like this teacher's but with <paramref name="student"/> in place of the teacher's classifier stage
    /// (for a teacher from <see cref="FromModelFile"/>: e.g. MapValueToKey → student → MapKeyToValue); <paramref name="student"/>
    /// alone for other teachers.
    /// </summary>
    public ITransformer WithStudent(CnnClassifierTransformer student)
    {
        ArgumentNullException.ThrowIfNull(student);
        if (Pipeline is null) return student;
        var stages = CnnPipelineFile.Stages(Pipeline).Select(s => s is CnnClassifierTransformer ? student : s).ToArray();
        return new TransformerChain<ITransformer>(stages);
    }

    /// <summary>Releases the networks the teacher loaded itself (not a classifier given to <see cref="FromTransformer"/>).</summary>
    public void Dispose()
    {
        foreach (var owned in _owned) owned.Dispose();
    }
}
