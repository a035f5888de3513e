namespace Cnn.Backbones.Weights;

/// <summary>
/// A strict <see cref="StateDictLoader.Load"/> found missing, unexpected or mis-shaped weights. The module was left unchanged.
/// </summary>
public sealed class WeightLoadException : Exception
{
    /// <summary>Creates the exception from the failed load's report.</summary>
    public WeightLoadException(WeightLoadReport report)
        : base("The weights do not fit the module, so nothing was loaded: " + report.Describe(10, "; ") +
               ". Rename or drop entries (StateDict.Rename / RemovePrefix), or pass strict: false to load what fits.")
    {
        Report = report;
    }

    /// <summary>Creates the exception for a weight file that does not fit a named model.</summary>
    /// <param name="report">The failed load's report.</param>
    /// <param name="path">The weight file.</param>
    /// <param name="model">The model's name (e.g. <c>resnet34</c>).</param>
    public WeightLoadException(WeightLoadReport report, string path, string model)
        : base($"Weight file '{path}' does not fit {model}, so nothing was loaded: " + report.Describe(10, "; ") +
               $". Check that the file was saved from {model} (the same variant and layout), or load it with strict: false to take what fits.")
    {
        Report = report;
    }

    /// <summary>The details of what did not match.</summary>
    public WeightLoadReport Report { get; }
}
