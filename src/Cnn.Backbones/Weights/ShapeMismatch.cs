namespace Cnn.Backbones.Weights;

/// <summary>A weight whose name matched but whose shape differs between the module and the file.</summary>
/// <param name="Name">The state-dict key.</param>
/// <param name="ExpectedShape">The module's shape.</param>
/// <param name="FileShape">The file's shape.</param>
public sealed record ShapeMismatch(string Name, IReadOnlyList<long> ExpectedShape, IReadOnlyList<long> FileShape)
{
    /// <summary>E.g. <c>fc.weight: module [10, 512], file [1000, 512]</c>.</summary>
    public override string ToString() =>
        $"{Name}: module [{string.Join(", ", ExpectedShape)}], file [{string.Join(", ", FileShape)}]";
}
