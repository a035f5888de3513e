using Cnn.MLNet.Persistence;
using Cnn.MLNet.Scoring;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Cnn.Cli.Inference;

/// <summary>
/// A pipeline saved by <c>cnn train</c> (or <see cref="CnnPipelineFile.Save"/>), loaded for scoring: its input schema, the
/// class names of its <c>Score</c> column, and a way to feed it image files.
/// </summary>
internal sealed class PipelineModel : IDisposable
{
    /// <summary>Name of the class-probability column.</summary>
    public const string ScoreColumn = "Score";

    private PipelineModel(MLContext ml, ITransformer model, DataViewSchema inputSchema, string imageColumn, string? labelColumn, IReadOnlyList<string> classNames)
    {
        Ml = ml;
        Model = model;
        InputSchema = inputSchema;
        ImageColumn = imageColumn;
        LabelColumn = labelColumn;
        ClassNames = classNames;
    }

    /// <summary>The context the pipeline was loaded in.</summary>
    public MLContext Ml { get; }

    /// <summary>The fitted pipeline.</summary>
    public ITransformer Model { get; }

    /// <summary>The input schema the pipeline expects.</summary>
    public DataViewSchema InputSchema { get; }

    /// <summary>The input column holding images (encoded bytes or file paths).</summary>
    public string ImageColumn { get; }

    /// <summary>The text label column of the input, or null when the pipeline takes none.</summary>
    public string? LabelColumn { get; }

    /// <summary>Class names in score order.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>The pipeline's CNN classifier stage.</summary>
    public CnnClassifierTransformer Classifier { get; private init; } = null!;

    /// <summary>Sets how the network computes from <c>--precision</c>, <c>--memory-format</c> and <c>--engine</c>.</summary>
    public void UseCompute(CliArguments arguments) => ComputeOptions.Apply(Classifier.Network, arguments);

    /// <summary>
    /// The classifier network's pooled pre-logits features [images][features] of images (encoded bytes, named by their path),
    /// preprocessed as the network was trained, in batches of <paramref name="batchSize"/>.
    /// </summary>
    public float[][] Features(IReadOnlyList<Cnn.MLNet.Data.ImageSample> images, int batchSize) => BackboneRunner.Rows(Classifier.Network, images, batchSize, preLogits: true);

    /// <summary>Loads <paramref name="path"/>; fails with one clear line when it is not a Cnn.MLNet classifier pipeline.</summary>
    public static PipelineModel Load(string path)
    {
        var ml = new MLContext(seed: 0);
        var model = CnnPipelineFile.Load(ml, path, out var inputSchema);
        var classifier = Stages(model).OfType<CnnClassifierTransformer>().LastOrDefault()
            ?? throw new InvalidDataException($"'{path}' holds no CNN classifier stage; save models with 'cnn train'.");
        var output = model.GetOutputSchema(inputSchema);
        var score = output.GetColumnOrNull(ScoreColumn)
            ?? throw new InvalidDataException($"'{path}': the pipeline has no '{ScoreColumn}' column.");
        var image = inputSchema.GetColumnOrNull(classifier.ImageColumnName)
            ?? throw new InvalidDataException($"'{path}': the classifier reads '{classifier.ImageColumnName}', which the pipeline's input does not have " +
                                              "(only pipelines that take the image column as input can be fed files).");
        if (!IsBytes(image.Type) && image.Type is not TextDataViewType)
            throw new InvalidDataException($"'{path}': input column '{image.Name}' is {image.Type}; the command line feeds encoded image bytes or file paths.");
        string? label = null;
        if (inputSchema.GetColumnOrNull("Label") is { } labelColumn)
        {
            if (labelColumn.Type is not TextDataViewType)
                throw new InvalidDataException($"'{path}': input column 'Label' is {labelColumn.Type}; the command line fills text labels only.");
            label = labelColumn.Name;
        }
        return new PipelineModel(ml, model, inputSchema, image.Name, label, SlotNames(score) ?? classifier.ClassNames) { Classifier = classifier };
    }

    /// <summary>A data view of the given images (label empty) in the pipeline's input form.</summary>
    public IDataView ViewOf(IReadOnlyList<string> paths, IReadOnlyList<byte[]> encoded)
    {
        bool bytes = IsBytes(InputSchema[ImageColumn].Type);
        var rows = paths.Select((p, i) => new InputRow { Bytes = bytes ? encoded[i] : Array.Empty<byte>(), Path = Path.GetFullPath(p), Label = "" });
        var definition = SchemaDefinition.Create(typeof(InputRow));
        definition.Remove(definition[bytes ? nameof(InputRow.Path) : nameof(InputRow.Bytes)]);
        definition[bytes ? nameof(InputRow.Bytes) : nameof(InputRow.Path)].ColumnName = ImageColumn;
        if (LabelColumn is null) definition.Remove(definition[nameof(InputRow.Label)]);
        else definition[nameof(InputRow.Label)].ColumnName = LabelColumn;
        return Ml.Data.LoadFromEnumerable(rows, definition);
    }

    /// <summary>Class probabilities [rows][classes] of scored data, in row order.</summary>
    public static float[][] Scores(IDataView scored)
    {
        var column = scored.Schema[ScoreColumn];
        var result = new List<float[]>();
        using var cursor = scored.GetRowCursor(new[] { column });
        var getter = cursor.GetGetter<VBuffer<float>>(column);
        VBuffer<float> value = default;
        while (cursor.MoveNext())
        {
            getter(ref value);
            result.Add(value.DenseValues().ToArray());
        }
        return result.ToArray();
    }

    /// <summary>
    /// Fails with one line when <paramref name="classes"/> (a data set's) holds a class the model does not know.
    /// </summary>
    public void CheckClasses(IReadOnlyList<string> classes, string source)
    {
        var unknown = classes.Where(c => !ClassNames.Contains(c, StringComparer.Ordinal)).ToList();
        if (unknown.Count > 0)
            throw new InvalidDataException(
                $"{source} has class(es) {string.Join(", ", unknown.Take(5).Select(c => $"'{c}'"))}{(unknown.Count > 5 ? ", …" : "")} " +
                $"that the model was not trained on; the model's classes are {string.Join(", ", ClassNames.Select(c => $"'{c}'"))}.");
    }

    /// <summary>Releases the networks of the pipeline.</summary>
    public void Dispose()
    {
        foreach (var stage in Stages(Model).OfType<IDisposable>()) stage.Dispose();
    }

    private static bool IsBytes(DataViewType type) => type is VectorDataViewType { ItemType: var item } && item == NumberDataViewType.Byte;

    private static IReadOnlyList<string>? SlotNames(DataViewSchema.Column score)
    {
        if (score.Annotations.Schema.GetColumnOrNull("SlotNames") is not { Type: VectorDataViewType { ItemType: TextDataViewType } }) return null;
        VBuffer<ReadOnlyMemory<char>> names = default;
        score.Annotations.GetValue("SlotNames", ref names);
        return names.DenseValues().Select(n => n.ToString()).ToArray();
    }

    /// <summary>The leaf transformers of a (nested) transformer chain, in order.</summary>
    public static IEnumerable<ITransformer> Stages(ITransformer model) => CnnPipelineFile.Stages(model);

    private sealed class InputRow
    {
        public byte[] Bytes { get; set; } = Array.Empty<byte>();

        public string Path { get; set; } = "";

        public string Label { get; set; } = "";
    }
}
