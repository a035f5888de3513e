using Cnn.MLNet;

namespace Cnn.Examples.GuideSnippets;

/// <summary>The snippets of docs/guides/mixed-precision.md.</summary>
internal static class MixedPrecision
{
    /// <summary>Pins precision and memory format instead of Auto.</summary>
    public static CnnTrainerOptions Pinned() =>
        #region options
        new CnnTrainerOptions
        {
            Precision = CnnPrecision.BFloat16,             // Auto (default), Float32, BFloat16, Float16 (CUDA only)
            MemoryFormat = CnnMemoryFormat.ChannelsLast,   // Auto (default), Contiguous, ChannelsLast
        };
        #endregion
}
