using Cnn.Backbones.Models;
using Cnn.Backbones.Weights;
using Cnn.MLNet.Imaging;

namespace Cnn.MLNet.Networks;

/// <summary>
/// Everything that defines a network except its trained weights: the registered architecture, the options it is built with and
/// the preprocessing that feeds it. One spec builds the same network everywhere (<see cref="NetworkBuilder.Build"/>): for
/// fine-tuning, distillation, feature extraction and the command line; a saved model file stores its spec as it is, so every
/// option round-trips.
/// </summary>
/// <remarks>
/// <see cref="ModelOptions.ImageSize"/> is the square input size of the preprocessing as well (and, for the Vision Transformer,
/// of its position embedding); null takes the architecture's pretrained configuration. <see cref="ModelOptions.InChannels"/> is
/// the preprocessing's channel count (1 = grey, 3 = RGB). <see cref="ModelOptions.WeightsPath"/> names the weights to start from;
/// it is cleared once the network exists, since its weights then travel with it.
/// </remarks>
public sealed record NetworkSpec
{
    /// <summary>Registered architecture name (e.g. <c>resnet50</c>; see <c>ModelRegistry.List()</c>).</summary>
    public required string Architecture { get; init; }

    /// <summary>The options the backbone is built with.</summary>
    public required ModelOptions Model { get; init; }

    /// <summary>Evaluation preprocessing: resize, centre crop, channels and normalisation (training adds its augmentation).</summary>
    public required PreprocessOptions Preprocess { get; init; }

    /// <summary>
    /// The spec of <paramref name="architecture"/> built with <paramref name="model"/>, fed as its pretrained configuration says
    /// (input size, crop, interpolation, mean and standard deviation per channel) unless overridden. A grey (1-channel) model gets
    /// the average of the configuration's RGB statistics. A weights file written by <c>cnn import</c> brings what it records:
    /// its block counts (unless <see cref="ModelOptions.BlockCounts"/> is set) and its mean and std (unless given).
    /// </summary>
    /// <param name="architecture">Registered architecture name.</param>
    /// <param name="model">Model options; <see cref="ModelOptions.ImageSize"/> and <see cref="ModelOptions.InChannels"/> set the input.</param>
    /// <param name="mean">Normalisation mean per channel, or null for the configuration's.</param>
    /// <param name="std">Normalisation standard deviation per channel, or null for the configuration's.</param>
    /// <param name="cropPct">Evaluation centre-crop fraction, or null for the configuration's.</param>
    /// <param name="weightsConfig">
    /// The configuration of the weights the network will get, when the caller resolved them itself; null takes it from
    /// <see cref="ModelOptions.Weights"/> when set, else the architecture's default configuration.
    /// </param>
    /// <remarks>
    /// <see cref="ModelOptions.Weights"/> is resolved here (<see cref="PretrainedWeights.Resolve"/>: a name is downloaded once and
    /// cached, a path taken as it is) and replaced by <see cref="ModelOptions.WeightsPath"/>, so every later step sees a file;
    /// preprocessing then follows the weights' configuration (input size, crop, interpolation, mean and std) unless overridden.
    /// </remarks>
    /// <exception cref="ArgumentException">Unknown architecture (the message lists close matches), unknown weights name, or invalid options.</exception>
    /// <exception cref="FileNotFoundException">The weights file does not exist.</exception>
    /// <exception cref="Backbones.Weights.Download.WeightDownloadException">Named weights could not be downloaded (or not offline); the message says what to do.</exception>
    public static NetworkSpec For(string architecture, ModelOptions model, IReadOnlyList<float>? mean = null, IReadOnlyList<float>? std = null, double? cropPct = null, PretrainedConfig? weightsConfig = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var info = ModelRegistry.Get(architecture);
        CheckChannels(model.InChannels);
        if (model.Weights is { } weights)
        {
            if (model.WeightsPath is not null) model.Validate(); // names the conflict
            var resolved = PretrainedWeights.Resolve(info.Name, weights);
            model = model with { Weights = null, WeightsPath = resolved.Path };
            weightsConfig ??= resolved.Config;
        }
        (model, mean, std) = ImportedWeights.Apply(model, mean, std);
        var config = weightsConfig ?? info.DefaultConfig;
        var spec = new NetworkSpec
        {
            Architecture = info.Name,
            Model = model,
            Preprocess = new PreprocessOptions
            {
                Height = model.ImageSize ?? config.InputSize.Height,
                Width = model.ImageSize ?? config.InputSize.Width,
                Channels = model.InChannels,
                Mean = mean ?? PerChannel(config.Mean, model.InChannels),
                Std = std ?? PerChannel(config.Std, model.InChannels),
                CropPct = cropPct ?? config.CropPct,
                Interpolation = config.Interpolation switch
                {
                    "bicubic" => ResizeInterpolation.Bicubic,
                    "nearest" => ResizeInterpolation.Nearest,
                    _ => ResizeInterpolation.Bilinear,
                },
            },
        };
        spec.Validate();
        return spec;
    }

    /// <summary>The same spec for another class count (the trainer's label count, the teacher's classes).</summary>
    public NetworkSpec WithClasses(int numClasses) => this with { Model = Model with { NumClasses = numClasses } };

    /// <summary>
    /// Checks the whole spec: a registered architecture, valid model options (see <see cref="ModelOptions.Validate"/>), valid
    /// preprocessing whose channels are the model's input channels.
    /// </summary>
    /// <exception cref="ArgumentException">The first problem, naming the option.</exception>
    /// <exception cref="FileNotFoundException">The weights file does not exist.</exception>
    public void Validate()
    {
        ModelRegistry.Get(Architecture);
        ArgumentNullException.ThrowIfNull(Model);
        ArgumentNullException.ThrowIfNull(Preprocess);
        CheckChannels(Model.InChannels);
        Model.Validate();
        Preprocess.Validate();
        if (Preprocess.Channels != Model.InChannels)
            throw new ArgumentException($"The preprocessing makes {Preprocess.Channels}-channel images but the model takes {Model.InChannels} (ModelOptions.InChannels).");
        if (Model.ImageSize is { } size && (Preprocess.Height != size || Preprocess.Width != size))
            throw new ArgumentException($"The preprocessing makes {Preprocess.Height}x{Preprocess.Width} images but ModelOptions.ImageSize is {size}.");
    }

    private static void CheckChannels(int channels)
    {
        if (channels is not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(ModelOptions.InChannels), channels,
                $"ModelOptions.InChannels must be 1 (grayscale) or 3 (RGB) for a network fed with images; got {channels}.");
    }

    private static IReadOnlyList<float> PerChannel(IReadOnlyList<double> values, int channels) =>
        values.Count == channels ? values.Select(v => (float)v).ToArray()
        : channels == 1 ? new[] { (float)values.Average() } // one grey channel: the average of the RGB statistics
        : Enumerable.Range(0, channels).Select(i => (float)values[i % values.Count]).ToArray();
}
