namespace Cnn.Backbones.Weights;

/// <summary>Reads <c>torch.save</c> zip checkpoints (in progress: see the next commit).</summary>
public static class TorchCheckpoint
{
    /// <summary>Reads the state dict of a checkpoint.</summary>
    public static StateDict Read(string path) =>
        throw new WeightFileException(path, $"{path}: PyTorch checkpoints are not readable yet in this build; convert to safetensors.");

    /// <summary>Lists the tensors of a checkpoint.</summary>
    public static IReadOnlyList<TensorInfo> Inspect(string path) => Read(path).Select(kv => new TensorInfo(kv.Key, kv.Value.dtype, kv.Value.shape)).ToList();
}
