using static TorchSharp.torch;

namespace Cnn.Backbones.Weights;

/// <summary>What a weight file says about one tensor, without its values.</summary>
/// <param name="Name">The tensor's name (its key in the state dict).</param>
/// <param name="DType">The element type as stored.</param>
/// <param name="Shape">The dimensions; empty for a scalar.</param>
public sealed record TensorInfo(string Name, ScalarType DType, IReadOnlyList<long> Shape)
{
    /// <summary>The number of elements (product of <see cref="Shape"/>; 1 for a scalar).</summary>
    public long Numel => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>
    /// False for BatchNorm's <c>num_batches_tracked</c> counters (names ending with it), which
    /// <see cref="StateDict.TotalParameters"/> and parameter totals leave out; true for everything else.
    /// </summary>
    public bool CountsAsParameter => !IsBatchCounter(Name);

    /// <summary>
    /// True for BatchNorm's buffers, which a weight file stores beside the parameters but which are not learned by gradient:
    /// <c>running_mean</c>, <c>running_var</c> and <c>num_batches_tracked</c> (by their names, as PyTorch names them).
    /// </summary>
    public bool IsBuffer => IsBatchCounter(Name) || Name.EndsWith("running_mean", StringComparison.Ordinal) || Name.EndsWith("running_var", StringComparison.Ordinal);

    internal static bool IsBatchCounter(string name) => name.EndsWith("num_batches_tracked", StringComparison.Ordinal);

    /// <summary>The PyTorch name of <see cref="DType"/>, e.g. <c>float32</c>.</summary>
    public string DTypeName => DTypes.Name(DType);

    /// <summary>The shape as PyTorch prints it, e.g. <c>[64, 3, 7, 7]</c>.</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
