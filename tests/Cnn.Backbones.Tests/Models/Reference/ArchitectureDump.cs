using System.Text.Json;

namespace Cnn.Backbones.Tests.Models;

/// <summary>The reference's description of one spec: state-dict keys and shapes, counts, regularisation and weights configuration.</summary>
/// <param name="Keys">State-dict entries in order, with shapes.</param>
/// <param name="Parameters"><c>sum(p.numel())</c> over the parameters.</param>
/// <param name="Dropout">Dropout probability before the classifier (0 without).</param>
/// <param name="DropPath">Stochastic-depth probabilities, in module order.</param>
/// <param name="Family">The torchvision module that defines the model (e.g. <c>torchvision.models.resnet</c>), or null for the script's own builders.</param>
/// <param name="Weights">torchvision's IMAGENET1K_V1 weights configuration, or null when there are none.</param>
internal sealed record ArchitectureDump(
    IReadOnlyList<(string Key, long[] Shape)> Keys, long Parameters, double Dropout, double[] DropPath, string? Family, TorchvisionWeights? Weights)
{
    /// <summary>Reads one entry of the script's <c>architecture</c> output.</summary>
    public static ArchitectureDump Parse(JsonElement v)
    {
        var keys = v.GetProperty("keys").EnumerateArray().Select(k => (k[0].GetString()!, Longs(k[1]))).ToArray();
        var weights = v.GetProperty("weights");
        return new ArchitectureDump(
            keys, v.GetProperty("params").GetInt64(), v.GetProperty("dropout").GetDouble(), Doubles(v.GetProperty("drop_path")),
            v.GetProperty("family").ValueKind == JsonValueKind.Null ? null : v.GetProperty("family").GetString(),
            weights.ValueKind == JsonValueKind.Null ? null : new TorchvisionWeights(
                weights.GetProperty("meta_params").GetInt64(), weights.GetProperty("min_size")[0].GetInt32(),
                weights.GetProperty("crop").GetInt32(), weights.GetProperty("resize").GetInt32(),
                Doubles(weights.GetProperty("mean")), Doubles(weights.GetProperty("std")),
                weights.GetProperty("interpolation").GetString()!, weights.GetProperty("classes").GetInt32()));
    }

    private static long[] Longs(JsonElement array) => array.EnumerateArray().Select(d => d.GetInt64()).ToArray();

    private static double[] Doubles(JsonElement array) => array.EnumerateArray().Select(d => d.GetDouble()).ToArray();
}

/// <summary>torchvision's IMAGENET1K_V1 weights of a model: meta and eval transforms.</summary>
/// <param name="MetaParameters">The weights' <c>meta["num_params"]</c>.</param>
/// <param name="MinSize">The weights' <c>meta["min_size"]</c> (height).</param>
/// <param name="Crop">Eval crop size.</param>
/// <param name="Resize">Eval resize size.</param>
/// <param name="Mean">Normalisation mean.</param>
/// <param name="Std">Normalisation standard deviation.</param>
/// <param name="Interpolation">Resize interpolation.</param>
/// <param name="Classes">Number of categories.</param>
internal sealed record TorchvisionWeights(
    long MetaParameters, int MinSize, int Crop, int Resize, double[] Mean, double[] Std, string Interpolation, int Classes);
