using Microsoft.ML;
using Microsoft.ML.Data;

namespace Cnn.MLNet.Mapping;

/// <summary>An output column a <see cref="IBatchMapping"/> adds: its name, float-vector or key type, and annotations.</summary>
/// <param name="Name">Column name (e.g. <c>Score</c>).</param>
/// <param name="Type">Column type: a known-size <see cref="VectorDataViewType"/> of <see cref="NumberDataViewType.Single"/>, or a <see cref="KeyDataViewType"/> of UInt32.</param>
/// <param name="Annotations">Annotations attached to the column (slot names, key values, score kind), or null.</param>
internal sealed record OutputColumn(string Name, DataViewType Type, DataViewSchema.Annotations? Annotations)
{
    /// <summary>Number of float values per row (1 for a key column).</summary>
    public int Width => Type is VectorDataViewType v ? v.Size : 1;
}

/// <summary>
/// Computes output columns for a batch of images at once (one network forward pass per batch).
/// Implemented by the classifier and the feature extractor; the data-view plumbing around it is shared.
/// </summary>
internal interface IBatchMapping
{
    /// <summary>The image input column's name.</summary>
    string InputColumnName { get; }

    /// <summary>The columns this mapping adds, in order.</summary>
    IReadOnlyList<OutputColumn> OutputColumns { get; }

    /// <summary>Rows per forward pass.</summary>
    int BatchSize { get; }

    /// <summary>
    /// Computes every output column for <paramref name="images"/>. <paramref name="outputs"/>[c] receives
    /// <c>images.Count * OutputColumns[c].Width</c> values, row-major. Key columns receive the key value (1-based) as float.
    /// </summary>
    void Map(IReadOnlyList<Cnn.MLNet.Data.ImageSample> images, float[][] outputs);

    /// <summary>
    /// The part of mapping <paramref name="images"/> that can run ahead on another thread while the previous batch is mapped
    /// (decoding and preprocessing into a batch buffer), or null when the mapping has none. Thread-safe.
    /// </summary>
    IDisposable? Prepare(IReadOnlyList<Cnn.MLNet.Data.ImageSample> images) => null;

    /// <summary>As <see cref="Map(IReadOnlyList{Cnn.MLNet.Data.ImageSample}, float[][])"/>, with what <see cref="Prepare"/> made for these images.</summary>
    void Map(IReadOnlyList<Cnn.MLNet.Data.ImageSample> images, IDisposable? prepared, float[][] outputs) => Map(images, outputs);

    /// <summary>Checks the input schema; throws <see cref="ArgumentOutOfRangeException"/> with an actionable message if the image column is missing or not an image.</summary>
    void CheckInput(DataViewSchema schema);
}
