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

    /// <summary>The details of what did not match.</summary>
    public WeightLoadReport Report { get; }
}
