using Cnn.MLNet.Data;
using Cnn.MLNet.Mapping;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Cnn.MLNet.Scoring;

/// <summary>
/// The columns every image classifier adds, as ML.NET's trainers do: <c>Score</c> (the class probabilities, with the class names as
/// slot names) and <c>PredictedLabel</c> (the key of the most probable class, with the class names as key values), computed in
/// batches from a function that gives the probabilities of a batch of images. Shared by the fine-tuned classifier and CLIP's
/// zero-shot classifier.
/// </summary>
internal sealed class ClassifierMapping : IBatchMapping
{
    private readonly LabelKeys _labels;
    private readonly Func<IReadOnlyList<ImageSample>, float[]> _probabilities;
    private readonly Func<IReadOnlyList<ImageSample>, ImageBatch>? _prepare;
    private readonly Func<ImageBatch, float[]>? _preparedProbabilities;

    /// <param name="labels">The classes, in output order.</param>
    /// <param name="probabilities">Row-major probabilities [images × classes] of a batch of images.</param>
    /// <param name="imageColumn">The image column.</param>
    /// <param name="scoreColumn">The probabilities column.</param>
    /// <param name="predictedLabelColumn">The predicted key column.</param>
    /// <param name="batchSize">Images per batch.</param>
    /// <param name="prepare">Decodes and preprocesses a batch ahead (<see cref="IBatchMapping.Prepare"/>), or null.</param>
    /// <param name="preparedProbabilities">Probabilities of a batch <paramref name="prepare"/> made, or null.</param>
    public ClassifierMapping(LabelKeys labels, Func<IReadOnlyList<ImageSample>, float[]> probabilities, string imageColumn, string scoreColumn,
        string predictedLabelColumn, int batchSize, Func<IReadOnlyList<ImageSample>, ImageBatch>? prepare = null, Func<ImageBatch, float[]>? preparedProbabilities = null)
    {
        _labels = labels;
        _probabilities = probabilities;
        _prepare = prepare;
        _preparedProbabilities = preparedProbabilities;
        InputColumnName = imageColumn;
        ScoreColumn = scoreColumn;
        PredictedLabelColumn = predictedLabelColumn;
        BatchSize = batchSize;
        OutputColumns =
        [
            new OutputColumn(scoreColumn, new VectorDataViewType(NumberDataViewType.Single, labels.Count), labels.ScoreAnnotations()),
            new OutputColumn(predictedLabelColumn, labels.KeyType, labels.KeyValuesAnnotation()),
        ];
    }

    public string InputColumnName { get; }

    public string ScoreColumn { get; }

    public string PredictedLabelColumn { get; }

    public IReadOnlyList<OutputColumn> OutputColumns { get; }

    public int BatchSize { get; }

    public void CheckInput(DataViewSchema schema) => ImageColumns.Find(schema, InputColumnName);

    public IDisposable? Prepare(IReadOnlyList<ImageSample> images) => _prepare?.Invoke(images);

    public void Map(IReadOnlyList<ImageSample> images, float[][] outputs) => Map(images, null, outputs);

    public void Map(IReadOnlyList<ImageSample> images, IDisposable? prepared, float[][] outputs)
    {
        int classes = _labels.Count;
        var probabilities = prepared is ImageBatch batch && _preparedProbabilities is not null ? _preparedProbabilities(batch) : _probabilities(images);
        probabilities.AsSpan().CopyTo(outputs[0]);
        for (int i = 0; i < images.Count; i++)
        {
            var row = probabilities.AsSpan(i * classes, classes);
            int best = 0;
            for (int c = 1; c < classes; c++)
                if (row[c] > row[best]) best = c;
            outputs[1][i] = best + 1; // keys are 1-based; 0 means missing
        }
    }
}
