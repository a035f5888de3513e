using Cnn.Backbones.Models;
using Cnn.MLNet.Data;
using Cnn.MLNet.Mapping;
using Cnn.MLNet.Networks;
using Cnn.MLNet.Scoring;
using Cnn.MLNet.Training.Bottlenecks;
using Cnn.MLNet.Training.Checkpoints;
using Cnn.MLNet.Training;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Transforms.Image;
using Microsoft.ML;

namespace Cnn.MLNet;

/// <summary>
/// An ML.NET multiclass trainer that fine-tunes a CNN backbone on an image column. Lazy: nothing is read or trained
/// until <see cref="Fit"/>; <see cref="GetOutputSchema"/> validates the columns first. Create it with <see cref="CnnTrainer"/>
/// or <c>mlContext.MulticlassClassification.Trainers.Cnn(...)</c>.
/// </summary>
public sealed class CnnEstimator : IEstimator<CnnClassifierTransformer>
{
    private readonly IHostEnvironment? _environment;

    internal CnnEstimator(CnnTrainerOptions options, IHostEnvironment? environment)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!ModelRegistry.Exists(options.Architecture))
            ModelRegistry.Get(options.Architecture); // throws the registry's error with close matches
        options.Validate();
        Options = options;
        _environment = environment;
    }

    /// <summary>The trainer's options.</summary>
    public CnnTrainerOptions Options { get; }

    /// <summary>Checks the input columns and describes the output: the input columns plus Score and PredictedLabel.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or has the wrong type; the message says how to fix it.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        SchemaShapes.RequireImageColumn(inputSchema, Options.ImageColumnName);
        if (SchemaShapes.Find(inputSchema, Options.LabelColumnName) is not { } label)
            throw new ArgumentOutOfRangeException(nameof(inputSchema),
                $"Label column '{Options.LabelColumnName}' is missing. Add mlContext.Transforms.Conversion.MapValueToKey(\"{Options.LabelColumnName}\", yourLabelColumn) or set LabelColumnName.");
        bool hasKeyValues = SchemaShapes.RequireKeyLabel(label, "the CNN trainer needs a scalar key",
            $"Add mlContext.Transforms.Conversion.MapValueToKey(\"{Options.LabelColumnName}\") before the trainer.");
        return SchemaShapes.AppendClassifierOutputs(inputSchema, Options.ScoreColumnName, Options.PredictedLabelColumnName, hasKeyValues);
    }

    /// <summary>Reads the data, trains the network and returns the fitted transformer.</summary>
    /// <exception cref="OperationCanceledException">The options' cancellation token or the MLContext (<c>CancelExecution</c>) cancelled training.</exception>
    /// <exception cref="TrainingDivergedException">The loss became NaN or infinite.</exception>
    public CnnClassifierTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        GetOutputSchema(SchemaShapes.FromSchema(input.Schema));
        var o = Options;
        var labels = LabelKeys.FromColumn(input.Schema[o.LabelColumnName]);
        using var channel = (_environment as IChannelProvider)?.Start("CnnTrainer");
        using var cancellation = FitCancellation.Start(_environment, "CnnTrainer", o.CancellationToken);
        var token = cancellation.Token;

        // The network first: a weights file that does not fit, or a freeze stage the model lacks, fails before any data is read.
        var network = BuildNetwork(labels);
        network.Log = _environment as IChannelProvider;
        try
        {
            var (train, validation) = ReadData(input, labels, token);
            channel?.Info(MessageSensitivity.None,
                $"Training {o.Architecture} on {train.Count} images ({labels.Count} classes), validating on {validation.Count}; {o.Epochs} epochs of batch {o.BatchSize}; computing in {network.ComputeDescription}.");
            var fingerprint = RunFingerprint.Of(o, [
                ("network", NetworkFile.Serialize(network.Spec)), ("classes", string.Join(" | ", labels.Names)),
                ("training images", RunFingerprint.Images(train)), ("validation images", RunFingerprint.Images(validation))]);
            var loop = new TrainingLoop(o, channel, cancellation, fingerprint);
            if (BottleneckPlan.For(o, network.Model, out string? reason) is { } level)
            {
                var batcher = OptimizationSetup.EvaluationBatcher(o, network.Preprocess);
                using var trainStore = BottleneckStore.Compute(network, level, train, batcher, o.CacheDirectory, "training", channel, token);
                using var validationStore = validation.Count == 0 ? null : BottleneckStore.Compute(network, level, validation, batcher, o.CacheDirectory, "validation", channel, token);
                loop.Run(network, BottleneckObjective.Setup(o, network, level, train, trainStore, validation, validationStore));
            }
            else
            {
                if (reason is not null) channel?.Info(MessageSensitivity.None, $"Bottleneck cache not used: {reason}.");
                loop.Run(network, ClassificationObjective.Setup(o, network, train, validation, keepDecoded: token, channel));
            }
            // The trained model predicts in the inference arithmetic, as it will after a save and load, whatever it trained in.
            network.UseCompute(o.InferencePrecision, o.InferenceMemoryFormat, o.InferenceEngine);
        }
        catch
        {
            network.Dispose();
            throw;
        }
        return new CnnClassifierTransformer(network, labels, o.ImageColumnName, o.ScoreColumnName, o.PredictedLabelColumnName, o.BatchSize);
    }

    /// <summary>
    /// The learning-rate range test on <paramref name="input"/> with these options' network, freezing, batches and optimizer
    /// (epochs, validation and the schedule are not used): one step per batch at exponentially growing rates, and a suggested
    /// rate. Nothing is returned but the measurements; the network is thrown away.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or has the wrong type, or a finder option is invalid.</exception>
    public LearningRateFinderResult FindLearningRate(IDataView input, LearningRateFinderOptions? finder = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        finder ??= new LearningRateFinderOptions();
        finder.Validate();
        GetOutputSchema(SchemaShapes.FromSchema(input.Schema));
        var o = Options;
        var labels = LabelKeys.FromColumn(input.Schema[o.LabelColumnName]);
        using var cancellation = FitCancellation.Start(_environment, "CnnTrainer", o.CancellationToken);
        using var network = BuildNetwork(labels);
        var rows = TrainingData.Read(input, o.ImageColumnName, o.LabelColumnName, allowMissingLabels: false, cancellation.Token);
        TrainingData.CheckTrainable(rows, labels.Names, "training");
        var train = rows.Select(r => r.Sample).ToList();
        return LearningRateFinder.Run(network, ClassificationObjective.Setup(o, network, train, Array.Empty<ImageSample>()), o, finder, cancellation);
    }

    /// <summary>The network to train for <paramref name="labels"/>' classes, seeded, frozen as the options say.</summary>
    private CnnNetwork BuildNetwork(LabelKeys labels)
    {
        var o = Options;
        var network = NetworkBuilder.Build(o.ToNetworkSpec().WithClasses(labels.Count), NetworkBuilder.ResolveDevice(o.Device), o.Seed);
        try
        {
            FreezePolicy.Apply(network.Model, o.Freeze, o.FreezeUpToStage);
            network.UseCompute(o.Precision, o.MemoryFormat, o.InferenceEngine);
            network.ResolveCompute(o.InferencePrecision, o.InferenceMemoryFormat, o.InferenceEngine); // fails now, not after training
            return network;
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    /// <summary>The training and validation images: <see cref="CnnFitOptions.ValidationSet"/>, a stratified split, or no validation.</summary>
    private (IReadOnlyList<ImageSample> Train, IReadOnlyList<ImageSample> Validation) ReadData(IDataView input, LabelKeys labels, CancellationToken token)
    {
        var o = Options;
        var rows = TrainingData.Read(input, o.ImageColumnName, o.LabelColumnName, allowMissingLabels: false, token);
        TrainingData.CheckTrainable(rows, labels.Names, "training");
        var all = new ImageDataset(rows.Select(r => r.Sample).ToList(), labels.Names);
        if (o.ValidationSet is not null)
        {
            if (o.ValidationSet.Schema.GetColumnOrNull(o.LabelColumnName) is not { } validationLabel || validationLabel.Type is not KeyDataViewType key || key.Count != (ulong)labels.Count)
                throw new ArgumentOutOfRangeException(nameof(o.ValidationSet),
                    $"The validation set's '{o.LabelColumnName}' column must be a key with the training label's {labels.Count} classes: transform it with the same fitted MapValueToKey.");
            return (all.Samples, TrainingData.Read(o.ValidationSet, o.ImageColumnName, o.LabelColumnName, allowMissingLabels: false, token).Select(r => r.Sample).ToList());
        }
        if (o.ValidationFraction > 0)
        {
            var (trainPart, validationPart) = all.Split(o.ValidationFraction, o.Seed);
            return (trainPart.Samples, validationPart.Samples);
        }
        return (all.Samples, Array.Empty<ImageSample>());
    }
}
