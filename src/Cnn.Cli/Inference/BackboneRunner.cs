using Cnn.Backbones.Models;
using Cnn.Backbones.Weights;
using Cnn.MLNet.Data;
using Cnn.MLNet.Networks;
using static TorchSharp.torch;

namespace Cnn.Cli.Inference;

/// <summary>
/// A registered backbone built for inference from the command line (<c>--model</c>, <c>--weights</c>, <c>--num-classes</c>,
/// <c>--crop-pct</c>): its weights loaded strictly, images preprocessed per its pretrained configuration, forward passes batched.
/// </summary>
internal sealed class BackboneRunner : IDisposable
{
    private readonly CnnNetwork _network;

    private BackboneRunner(CnnNetwork network, IReadOnlyList<string>? categories)
    {
        _network = network;
        Categories = categories;
    }

    /// <summary>The network.</summary>
    public CnnNetwork Network => _network;

    /// <summary>Classes of the classifier.</summary>
    public int NumClasses => _network.Model.NumClasses;

    /// <summary>Length of the pooled pre-logits vector.</summary>
    public int NumFeatures => _network.Model.NumFeatures;

    /// <summary>The class names that came with the pretrained weights (ImageNet's, a hub model's labels) when they fit the classifier; else null.</summary>
    public IReadOnlyList<string>? Categories { get; }

    /// <summary>
    /// Builds <paramref name="modelName"/> with <paramref name="weights"/> (a name, downloaded once and cached, or a file; see
    /// <see cref="PretrainedWeights"/>). The class count is <paramref name="numClasses"/>, else the weight file's classifier
    /// size, else none when the file has no classifier (a featurizer), else the default configuration's; the input channels follow
    /// the file's first convolution (1 or 3), else 3. Named weights bring their preprocessing and class names; a file written by
    /// <c>cnn import</c> brings its block counts, mean and std.
    /// </summary>
    /// <exception cref="InvalidDataException">The weights do not fit the model; the message says what differs.</exception>
    public static BackboneRunner Create(string modelName, string? weights, int? numClasses, double? cropPct, int? imageSize = null)
    {
        var resolved = weights is null ? null : PretrainedWeights.Resolve(modelName, weights);
        string? weightsPath = resolved?.Path;
        var config = resolved?.Config ?? ModelRegistry.Get(modelName).DefaultConfig;
        int channels = 3;
        int classes = numClasses ?? config.NumClasses;
        if (weightsPath is not null)
        {
            var tensors = WeightFile.Inspect(weightsPath);
            if (numClasses is null)
                classes = tensors.FirstOrDefault(t => t.Name == config.Classifier + ".weight") is { Shape.Count: 2 } head
                    ? (int)head.Shape[0]
                    : tensors.Any(t => t.Name.StartsWith(config.Classifier + ".", StringComparison.Ordinal)) ? classes : 0; // a featurizer: no classifier
            if (tensors.FirstOrDefault(t => t.Name == config.FirstConv + ".weight") is { Shape.Count: 4 } stem && stem.Shape[1] == 1)
                channels = 1;
        }
        // A file written by 'cnn import' brings its block counts and preprocessing; the weights themselves are loaded strictly below.
        var spec = NetworkSpec.For(modelName, new ModelOptions { NumClasses = classes, InChannels = channels, ImageSize = imageSize, WeightsPath = weightsPath }, null, null, cropPct, resolved?.Config);
        spec = spec with { Model = spec.Model with { WeightsPath = null } };
        var network = NetworkBuilder.Build(spec, CPU);
        try
        {
            if (weightsPath is not null) Load(network.Model, modelName, weightsPath, numClasses);
            network.Model.eval();
            network.UseEngine(Cnn.MLNet.CnnInferenceEngine.Auto); // --engine's default; ComputeOptions.Apply keeps it unless --engine is given
            var categories = resolved?.Categories is { } names && names.Count == network.Model.NumClasses ? names : null;
            return new BackboneRunner(network, categories);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    /// <summary>Warns on stderr that a model built without a weight file has random weights, so its outputs mean nothing yet.</summary>
    public static void WarnRandomWeights(TextWriter stderr, string modelName) =>
        stderr.WriteLine($"cnn: warning: no --weights given: {modelName} has random weights, so its outputs are meaningless. " +
                         "Give --pretrained, --weights <name> ('cnn weights list " + modelName + "') or a .pth/.safetensors file, or a trained model with --model-file.");

    /// <summary>Sets how the network computes from <c>--precision</c>, <c>--memory-format</c> and <c>--engine</c>.</summary>
    public void UseCompute(CliArguments arguments) => ComputeOptions.Apply(_network, arguments);

    /// <summary>Logits [images][classes], computed in batches of <paramref name="batchSize"/>.</summary>
    public float[][] Logits(IReadOnlyList<ImageSample> images, int batchSize) => Run(images, batchSize, preLogits: false);

    /// <summary>Pooled pre-logits features [images][<see cref="NumFeatures"/>] (<c>ForwardHead(ForwardFeatures(x), preLogits: true)</c>).</summary>
    public float[][] Features(IReadOnlyList<ImageSample> images, int batchSize) => Run(images, batchSize, preLogits: true);

    private float[][] Run(IReadOnlyList<ImageSample> images, int batchSize, bool preLogits) => Rows(_network, images, batchSize, preLogits);

    /// <summary>
    /// A network's eval-mode outputs (logits, or pooled features when <paramref name="preLogits"/>), one row per image, in
    /// batches, batch k + 1 decoded while batch k runs (<see cref="CnnNetwork.ForwardAll"/>).
    /// </summary>
    internal static float[][] Rows(CnnNetwork network, IReadOnlyList<ImageSample> images, int batchSize, bool preLogits) =>
        network.ForwardAll(images, batchSize, preLogits);

    private static void Load(Backbone model, string modelName, string path, int? numClasses)
    {
        try
        {
            model.LoadWeights(path, strict: true);
        }
        catch (ClassifierMismatchException ex)
        {
            throw new InvalidDataException(
                $"the classifier in '{path}' has {ex.FileClasses} classes but --num-classes is {numClasses ?? ex.ModelClasses}; " +
                "leave --num-classes out to use the file's class count.", ex);
        }
        catch (WeightLoadException ex)
        {
            var report = ex.Report;
            var details = new List<string>();
            if (report.MissingKeys.Count > 0) details.Add($"{report.MissingKeys.Count} missing (e.g. {string.Join(", ", report.MissingKeys.Take(3))})");
            if (report.UnexpectedKeys.Count > 0) details.Add($"{report.UnexpectedKeys.Count} unexpected (e.g. {string.Join(", ", report.UnexpectedKeys.Take(3))})");
            if (report.ShapeMismatches.Count > 0) details.Add($"{report.ShapeMismatches.Count} of another shape (e.g. {string.Join(", ", report.ShapeMismatches.Take(3))})");
            throw new InvalidDataException(
                $"the weights in '{path}' do not fit {modelName}: {string.Join("; ", details)}. Check that the file is for {modelName} " +
                "('cnn weights <file>' lists its tensors).", ex);
        }
    }

    /// <summary>Releases the network.</summary>
    public void Dispose() => _network.Dispose();
}
