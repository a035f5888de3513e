using System.Globalization;
using Cnn.Backbones.Models;
using Cnn.Backbones.Weights;

namespace Cnn.MLNet.Networks;

/// <summary>
/// What a safetensors file written by <c>cnn import</c> records beside its tensors (<c>cnn.block_counts</c>, <c>cnn.mean</c>,
/// <c>cnn.std</c>): the architecture variant and preprocessing the weights were made for, e.g. ML.NET's ResNet-18 featurizer
/// (three blocks in layer4, BGR mean image folded to a per-channel mean, std 1/255).
/// </summary>
internal static class ImportedWeights
{
    /// <summary>
    /// <paramref name="model"/> with the file's block counts when it sets none, and the file's mean and std where
    /// <paramref name="mean"/> / <paramref name="std"/> are not given and the channel count fits; unchanged for other files.
    /// </summary>
    public static (ModelOptions Model, IReadOnlyList<float>? Mean, IReadOnlyList<float>? Std) Apply(ModelOptions model, IReadOnlyList<float>? mean, IReadOnlyList<float>? std)
    {
        if (model.WeightsPath is not { } path || !File.Exists(path) || WeightFile.Detect(path) != WeightFile.Format.SafeTensors)
            return (model, mean, std);
        var metadata = SafeTensors.ReadMetadata(path);
        if (model.BlockCounts is null && metadata.TryGetValue("cnn.block_counts", out var blocks))
            model = model with { BlockCounts = Numbers(blocks, path, "cnn.block_counts").Select(v => (int)v).ToArray() };
        return (model, mean ?? PerChannel(metadata, "cnn.mean", model.InChannels, path), std ?? PerChannel(metadata, "cnn.std", model.InChannels, path));
    }

    private static IReadOnlyList<float>? PerChannel(IReadOnlyDictionary<string, string> metadata, string key, int channels, string path) =>
        metadata.TryGetValue(key, out var text) && Numbers(text, path, key) is { Length: var n } values && n == channels
            ? values.Select(v => (float)v).ToArray()
            : null;

    private static double[] Numbers(string text, string path, string key)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var values = new double[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]) || !double.IsFinite(values[i]))
                throw new InvalidDataException($"'{path}': metadata {key} = '{text}' is not a comma-separated list of numbers; re-import the model with 'cnn import'.");
        return values;
    }
}
