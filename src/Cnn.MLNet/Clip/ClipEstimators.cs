using Cnn.Backbones.Clip;
using Cnn.MLNet.Mapping;
using Cnn.MLNet;
using Microsoft.ML.Data;
using Microsoft.ML;

namespace Cnn.MLNet.Clip;

/// <summary>
/// Creates a <see cref="ClipZeroShotTransformer"/>: nothing is learned; <see cref="Fit"/> loads the CLIP model and encodes the
/// label × template prompts into the classifier. Create it with <c>mlContext.Transforms.ZeroShotClassify(...)</c>.
/// </summary>
public sealed class ClipZeroShotEstimator : IEstimator<ClipZeroShotTransformer>
{
    internal ClipZeroShotEstimator(IReadOnlyList<string> labels, IReadOnlyList<string>? templates, ClipZeroShotOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        templates ??= [ClipZeroShotClassifier.DefaultTemplate];
        ClipZeroShotClassifier.Validate(labels, templates);
        if (labels.Count < 2)
            throw new ArgumentException($"Zero-shot classification needs at least two labels to choose between; got only '{labels[0]}'.", nameof(labels));
        options.Validate();
        Labels = labels.ToArray();
        Templates = templates.ToArray();
        Options = options;
    }

    /// <summary>The class names.</summary>
    public IReadOnlyList<string> Labels { get; }

    /// <summary>The prompt templates.</summary>
    public IReadOnlyList<string> Templates { get; }

    /// <summary>The options.</summary>
    public ClipZeroShotOptions Options { get; }

    /// <summary>Checks the image column and describes the output: the input plus <c>Score</c> and <c>PredictedLabel</c>.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        SchemaShapes.RequireImageColumn(inputSchema, Options.ImageColumnName);
        return SchemaShapes.AppendClassifierOutputs(inputSchema, Options.ScoreColumnName, Options.PredictedLabelColumnName, withKeyValues: true);
    }

    /// <summary>Loads the model and builds the classifier; checks the input schema.</summary>
    public ClipZeroShotTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        ImageColumns.Find(input.Schema, Options.ImageColumnName);
        var network = ClipNetwork.Create(Options.ModelName, Options.WeightsPath);
        try
        {
            var classifier = ClipZeroShotClassifier.Build(network.Model, Labels, Templates, Options.Warn);
            return new ClipZeroShotTransformer(network, classifier, Options.ImageColumnName, Options.ScoreColumnName, Options.PredictedLabelColumnName, Options.BatchSize);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }
}

/// <summary>Creates a <see cref="ClipImageEmbeddingTransformer"/> (nothing is learned; <see cref="Fit"/> loads the model).</summary>
public sealed class ClipImageEmbeddingEstimator : IEstimator<ClipImageEmbeddingTransformer>
{
    internal ClipImageEmbeddingEstimator(ClipEmbeddingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
    }

    /// <summary>The options.</summary>
    public ClipEmbeddingOptions Options { get; }

    /// <summary>Checks the image column and adds the embedding column.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        SchemaShapes.RequireImageColumn(inputSchema, Options.InputColumnName);
        var builder = new DataViewSchema.Builder();
        builder.AddColumn(Options.OutputColumnName, new VectorDataViewType(NumberDataViewType.Single, Options.EmbedDim()));
        return SchemaShapes.Append(inputSchema, builder.ToSchema());
    }

    /// <summary>Loads the model; checks the input schema.</summary>
    public ClipImageEmbeddingTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        ImageColumns.Find(input.Schema, Options.InputColumnName);
        return new ClipImageEmbeddingTransformer(ClipNetwork.Create(Options.ModelName, Options.WeightsPath), Options.InputColumnName,
            Options.OutputColumnName, Options.Normalize, Options.BatchSize);
    }
}

/// <summary>Creates a <see cref="ClipTextEmbeddingTransformer"/> (nothing is learned; <see cref="Fit"/> loads the model).</summary>
public sealed class ClipTextEmbeddingEstimator : IEstimator<ClipTextEmbeddingTransformer>
{
    internal ClipTextEmbeddingEstimator(ClipEmbeddingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
    }

    /// <summary>The options.</summary>
    public ClipEmbeddingOptions Options { get; }

    /// <summary>Checks the text column and adds the embedding column.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var column = SchemaShapes.Find(inputSchema, Options.InputColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Text column '{Options.InputColumnName}' is not in the data.");
        if (column.ItemType is not TextDataViewType || column.Kind != SchemaShape.Column.VectorKind.Scalar)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Column '{Options.InputColumnName}' is not a text column; CLIP text embeddings need one.");
        var builder = new DataViewSchema.Builder();
        builder.AddColumn(Options.OutputColumnName, new VectorDataViewType(NumberDataViewType.Single, Options.EmbedDim()));
        return SchemaShapes.Append(inputSchema, builder.ToSchema());
    }

    /// <summary>Loads the model; checks the input schema.</summary>
    public ClipTextEmbeddingTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        ClipTextEmbeddingTransformer.FindText(input.Schema, Options.InputColumnName);
        return new ClipTextEmbeddingTransformer(ClipNetwork.Create(Options.ModelName, Options.WeightsPath), Options.InputColumnName,
            Options.OutputColumnName, Options.Normalize, Options.Warn);
    }
}
