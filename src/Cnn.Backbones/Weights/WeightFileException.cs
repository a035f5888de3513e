namespace Cnn.Backbones.Weights;

/// <summary>
/// A weight file is damaged, malformed or in a format this library does not read. The message names the file,
/// the tensor where relevant, and what is wrong, on one line. It is an <see cref="IOException"/>, so handlers of file errors catch it.
/// </summary>
public class WeightFileException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="filePath">The weight file.</param>
    /// <param name="message">The complete message (it should name the file).</param>
    /// <param name="tensorName">The tensor concerned, if any.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public WeightFileException(string filePath, string message, string? tensorName = null, Exception? inner = null)
        : base(message, inner)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    /// <summary>The weight file concerned.</summary>
    public string FilePath { get; }

    /// <summary>The tensor concerned, or null when the problem is not about one tensor.</summary>
    public string? TensorName { get; }
}
