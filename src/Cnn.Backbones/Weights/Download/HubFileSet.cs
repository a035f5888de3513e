namespace Cnn.Backbones.Weights.Download;

/// <summary>
/// Which files of a hub repository make a model: a configuration file (optional in the repository) and the weights, of which
/// the first name the repository has is taken.
/// </summary>
/// <param name="ConfigFileName">The configuration file, e.g. timm's <c>config.json</c>; fetched when the repository has it.</param>
/// <param name="WeightFileNames">Weight file names in order of preference, e.g. <c>model.safetensors</c> before <c>pytorch_model.bin</c>.</param>
public sealed record HubFileSet(string ConfigFileName, IReadOnlyList<string> WeightFileNames)
{
    /// <summary>timm's files: <c>config.json</c>, then <c>model.safetensors</c> or else <c>pytorch_model.bin</c>.</summary>
    public static HubFileSet Timm { get; } = new("config.json", ["model.safetensors", "pytorch_model.bin"]);

    /// <summary>OpenCLIP's files: <c>open_clip_config.json</c>, then <c>open_clip_model.safetensors</c> or else <c>open_clip_pytorch_model.bin</c>.</summary>
    public static HubFileSet OpenClip { get; } = new("open_clip_config.json", ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]);
}
