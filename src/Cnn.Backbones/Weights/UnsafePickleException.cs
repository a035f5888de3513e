namespace Cnn.Backbones.Weights;

/// <summary>
/// A PyTorch checkpoint's pickle references a Python global outside the allow-list (tensors, storages, OrderedDict).
/// Nothing in the file was executed; loading stopped at the reference.
/// </summary>
public sealed class UnsafePickleException : WeightFileException
{
    /// <summary>Creates the exception for <paramref name="globalName"/> (<c>module.name</c>) found in <paramref name="filePath"/>.</summary>
    public UnsafePickleException(string filePath, string globalName)
        : base(filePath,
            $"refused to load '{Path.GetFileName(filePath)}': it references the global '{globalName}', which a state dict never needs; " +
            "only tensors, storages and OrderedDict are allowed (nothing was executed). If the file holds a whole pickled model or " +
            "training state, load it in Python and re-save torch.save(model.state_dict(), path) or convert it to safetensors.")
    {
        Global = globalName;
    }

    /// <summary>The refused global, as <c>module.name</c> (e.g. <c>posix.system</c>).</summary>
    public string Global { get; }
}
