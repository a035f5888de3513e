using Cnn.MLNet.Data;
using Cnn.MLNet.Mapping;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Cnn.MLNet.Training;

/// <summary>Reads the image and label columns of an <see cref="IDataView"/> into samples for the batcher.</summary>
internal static class TrainingData
{
    /// <summary>
    /// Reads every row. Labels are 0-based class indices (key value − 1). A row whose label is missing (key 0: a value
    /// absent from the key map) is an error naming the row, unless <paramref name="allowMissingLabels"/>, when its label is −1.
    /// </summary>
    public static List<(ImageSample Sample, int Label)> Read(IDataView data, string imageColumn, string? labelColumn, bool allowMissingLabels, CancellationToken cancellationToken)
    {
        var image = ImageColumns.Find(data.Schema, imageColumn);
        DataViewSchema.Column? label = labelColumn is null ? null : data.Schema.GetColumnOrNull(labelColumn);
        var columns = label is null ? new[] { image } : new[] { image, label.Value };
        var rows = new List<(ImageSample, int)>();
        using var cursor = data.GetRowCursor(columns);
        var readImage = ImageColumns.CreateReader(cursor, image);
        ValueGetter<uint>? readLabel = label is null ? null : cursor.GetGetter<uint>(label.Value);
        uint key = 0;
        while (cursor.MoveNext())
        {
            cancellationToken.ThrowIfCancellationRequested();
            int index = -1;
            if (readLabel is not null)
            {
                readLabel(ref key);
                if (key == 0 && !allowMissingLabels)
                    throw new InvalidDataException(
                        $"Row {cursor.Position}: the label in column '{labelColumn}' is missing (its value is not in the key map, or the value was empty). " +
                        "Fix the row, filter such rows out (mlContext.Data.FilterRowsByMissingValues), or build the key map from all labels.");
                index = (int)key - 1;
            }
            var sample = readImage(Math.Max(index, 0));
            rows.Add((sample, index));
        }
        return rows;
    }

    /// <summary>Throws a clear error for empty data or data with fewer than two classes present.</summary>
    public static void CheckTrainable(IReadOnlyList<(ImageSample Sample, int Label)> rows, IReadOnlyList<string> classNames, string what)
    {
        if (rows.Count == 0)
            throw new InvalidOperationException($"The {what} data has no rows: there is nothing to train on. Check the data loading (file paths, filters).");
        var present = rows.Where(r => r.Label >= 0).Select(r => r.Label).Distinct().ToList();
        if (present.Count == 1)
            throw new InvalidOperationException(
                $"The {what} data contains a single class ('{classNames[present[0]]}'): a classifier needs examples of at least two classes.");
    }
}
