namespace Cnn.Backbones.Weights.Download;

/// <summary>The files of one hub model, verified and in the local hub cache (<c>models--org--name/snapshots/&lt;commit&gt;/</c>).</summary>
/// <param name="Id">The model asked for.</param>
/// <param name="Commit">The commit the revision resolved to (the snapshot folder's name).</param>
/// <param name="Directory">The snapshot folder.</param>
/// <param name="ConfigPath">The configuration file (<see cref="HubFileSet.ConfigFileName"/>), or null where the repository has none.</param>
/// <param name="WeightsPath">The weight file: the first of <see cref="HubFileSet.WeightFileNames"/> the repository has.</param>
public sealed record HubSnapshot(HubModelId Id, string Commit, string Directory, string? ConfigPath, string WeightsPath)
{
    /// <summary>The weight file's name in the repository, e.g. <c>model.safetensors</c>.</summary>
    public string WeightsFileName => Path.GetFileName(WeightsPath);
}
