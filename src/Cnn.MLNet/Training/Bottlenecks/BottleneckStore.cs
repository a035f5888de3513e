using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Cnn.MLNet.Data;
using Cnn.MLNet.Networks;
using Cnn.MLNet.Persistence;
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Training.Bottlenecks;

/// <summary>
/// The frozen backbone's output (<see cref="BottleneckLevel"/>) for every image of a split, computed once in eval mode
/// (batched and prefetched by the evaluation batcher) and kept as one CPU tensor [N, …] in sample order. With a cache folder,
/// entries are reused only under the same key: the architecture, the level, the preprocessing and a hash of every frozen weight
/// and buffer pick the file, and a SHA-256 of each image's content picks the entry, so a changed image is recomputed and never
/// served stale.
/// </summary>
internal sealed class BottleneckStore : IDisposable
{
    private BottleneckStore(Tensor features, bool[] present, int computed, int reused)
    {
        Features = features;
        Present = present;
        Computed = computed;
        Reused = reused;
    }

    /// <summary>Row i: the bottleneck of sample i (zeros where <see cref="Present"/> is false).</summary>
    public Tensor Features { get; }

    /// <summary>False for samples skipped as corrupt.</summary>
    public bool[] Present { get; }

    /// <summary>Images run through the backbone.</summary>
    public int Computed { get; }

    /// <summary>Images whose bottleneck came from the cache folder.</summary>
    public int Reused { get; }

    /// <summary>Skipped images.</summary>
    public int Skipped => Present.Count(p => !p);

    /// <summary>Computes (or reads back) the bottlenecks of <paramref name="samples"/>.</summary>
    /// <param name="network">The network; its frozen part is run in eval mode without gradient.</param>
    /// <param name="level">What to keep.</param>
    /// <param name="samples">The split's images.</param>
    /// <param name="batcher">An evaluation batcher (no augmentation) with the network's preprocessing.</param>
    /// <param name="cacheDirectory">A folder for the on-disk cache, or null.</param>
    /// <param name="what">The split's name for the log.</param>
    /// <param name="channel">Where progress is logged, or null.</param>
    /// <param name="token">Cancels the work.</param>
    public static BottleneckStore Compute(CnnNetwork network, BottleneckLevel level, IReadOnlyList<ImageSample> samples, ImageBatcher batcher,
        string? cacheDirectory, string what, IChannel? channel, CancellationToken token)
    {
        var clock = Stopwatch.StartNew();
        byte[][]? hashes = null;
        Dictionary<string, float[]> cached = new(StringComparer.Ordinal);
        string? file = null;
        if (cacheDirectory is not null)
        {
            Directory.CreateDirectory(cacheDirectory);
            file = Path.Combine(cacheDirectory, $"bottlenecks-{NetworkKey(network, level)}.bin");
            hashes = new byte[samples.Count][];
            Parallel.For(0, samples.Count, new ParallelOptions { CancellationToken = token }, i => hashes[i] = ImageContentHash.Of(samples[i]));
            cached = BottleneckFile.Read(file, channel);
        }

        var rows = new float[samples.Count][];
        var missing = new List<int>();
        for (int i = 0; i < samples.Count; i++)
        {
            if (hashes is not null && cached.TryGetValue(Convert.ToHexString(hashes[i]), out var row)) rows[i] = row;
            else missing.Add(i);
        }
        int reused = samples.Count - missing.Count;
        long[]? rowShape = null;
        var model = network.Model;
        bool wasTraining = model.training;
        model.eval();
        model.FoldBatchNorm(); // the frozen network's one pass over the images, at inference speed
        try
        {
            using var noGrad = no_grad();
            var subset = missing.Select(i => samples[i]).ToList();
            foreach (var batch in batcher.EnumerateEpoch(subset, 0, token))
            {
                if (batch.Count == 0) continue;
                using var scope = NewDisposeScope();
                Tensor output;
                if (level == BottleneckLevel.PreLogits && network.Engine is CnnInferenceEngine.OnnxRuntime or CnnInferenceEngine.Auto)
                    output = network.ForwardBatch(batch, preLogits: true);
                else
                {
                    var features = model.ForwardFeatures(batch.ToTensor().to(network.Device));
                    output = (level == BottleneckLevel.PreLogits ? model.ForwardHead(features, preLogits: true) : features).to(CPU).contiguous();
                }
                rowShape ??= output.shape.Skip(1).ToArray();
                var values = output.data<float>().ToArray();
                int length = values.Length / batch.Count;
                for (int k = 0; k < batch.Count; k++)
                    rows[missing[batch.SampleIndices[k]]] = values.AsSpan(k * length, length).ToArray();
            }
        }
        finally
        {
            network.ReleaseOnnxRuntime(); // the export was of the weights before training
            model.UnfoldBatchNorm();
            model.train(wasTraining);
        }

        rowShape ??= ShapeOf(network, level);
        long rowLength = rowShape.Aggregate(1L, (a, b) => a * b);
        var present = rows.Select(r => r is not null && r.Length == rowLength).ToArray();
        var all = new float[samples.Count * rowLength];
        for (int i = 0; i < samples.Count; i++)
            if (present[i]) rows[i].CopyTo(all.AsSpan((int)(i * rowLength), (int)rowLength));
        var tensor = torch.tensor(all, [samples.Count, .. rowShape]);

        if (file is not null && missing.Count > 0)
        {
            for (int i = 0; i < samples.Count; i++)
                if (present[i]) cached[Convert.ToHexString(hashes![i])] = rows[i];
            BottleneckFile.Write(file, cached, (int)rowLength);
        }
        channel?.Info(MessageSensitivity.None,
            $"Bottleneck cache ({level}) of {samples.Count} {what} images: {missing.Count} computed, {reused} reused ({clock.Elapsed.TotalSeconds:0.0}s).");
        return new BottleneckStore(tensor, present, missing.Count, reused);
    }

    /// <summary>The shape of one row when no image could be computed (all reused or all skipped): from a zero input.</summary>
    private static long[] ShapeOf(CnnNetwork network, BottleneckLevel level)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var p = network.Preprocess;
        var x = zeros([1, p.Channels, p.Height, p.Width], device: network.Device);
        bool wasTraining = network.Model.training;
        network.Model.eval();
        try
        {
            var features = network.Model.ForwardFeatures(x);
            var output = level == BottleneckLevel.PreLogits ? network.Model.ForwardHead(features, preLogits: true) : features;
            return output.shape.Skip(1).ToArray();
        }
        finally
        {
            network.Model.train(wasTraining);
        }
    }

    /// <summary>
    /// SHA-256 (hex, 16 bytes) of what decides a bottleneck besides the image: architecture, level, preprocessing, and every
    /// state-dict entry that is not trained (the frozen weights and all buffers).
    /// </summary>
    internal static string NetworkKey(CnnNetwork network, BottleneckLevel level)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes($"{network.Spec.Architecture}\n{level}\n{network.Model.Compute}\n{System.Text.Json.JsonSerializer.Serialize(network.Preprocess)}\n"));
        var trained = new HashSet<string>(network.Model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name), StringComparer.Ordinal);
        Checkpoints.RunFingerprint.AppendStateDict(hash, network.Model.state_dict().Where(kv => !trained.Contains(kv.Key)));
        return Convert.ToHexString(hash.GetHashAndReset(), 0, 16).ToLowerInvariant();
    }

    /// <inheritdoc/>
    public void Dispose() => Features.Dispose();
}

/// <summary>
/// The on-disk cache file: magic <c>CNNBOTT1</c>, the row length (int32) and count (int64), then per entry the 32-byte image
/// hash and the row as float32, little-endian. Written atomically; a file that does not add up is ignored (and rebuilt).
/// </summary>
internal static class BottleneckFile
{
    private static readonly byte[] Magic = "CNNBOTT1"u8.ToArray();

    /// <summary>The entries of <paramref name="path"/> (hex hash → row), or none when it is missing or damaged.</summary>
    public static Dictionary<string, float[]> Read(string path, IChannel? channel)
    {
        var entries = new Dictionary<string, float[]>(StringComparer.Ordinal);
        if (!File.Exists(path)) return entries;
        try
        {
            using var reader = new BinaryReader(File.OpenRead(path));
            long length = reader.BaseStream.Length;
            if (length < 20 || !reader.ReadBytes(8).AsSpan().SequenceEqual(Magic)) throw new InvalidDataException("not a bottleneck cache file");
            int rowLength = reader.ReadInt32();
            long count = reader.ReadInt64();
            if (rowLength <= 0 || count < 0 || 20 + count * (32 + 4L * rowLength) != length) throw new InvalidDataException("its size does not match its header");
            for (long i = 0; i < count; i++)
            {
                string key = Convert.ToHexString(reader.ReadBytes(32));
                var row = new float[rowLength];
                reader.BaseStream.ReadExactly(MemoryMarshal.AsBytes(row.AsSpan()));
                entries[key] = row;
            }
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            channel?.Warning(MessageSensitivity.None, $"Bottleneck cache '{path}' ignored ({ex.Message}); it is rebuilt.");
            entries.Clear();
        }
        return entries;
    }

    /// <summary>Writes every entry to <paramref name="path"/> atomically.</summary>
    public static void Write(string path, IReadOnlyDictionary<string, float[]> entries, int rowLength) =>
        AtomicFile.Write(path, overwriteReadOnly: false, temporary =>
        {
            using var writer = new BinaryWriter(File.Create(temporary));
            writer.Write(Magic);
            writer.Write(rowLength);
            writer.Write((long)entries.Count);
            foreach (var (key, row) in entries)
            {
                writer.Write(Convert.FromHexString(key));
                writer.Write(MemoryMarshal.AsBytes(row.AsSpan()));
            }
        });
}
