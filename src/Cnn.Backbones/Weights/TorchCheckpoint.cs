using System.IO.Compression;
using System.Text;
using Cnn.Backbones.Weights.Pickle;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Weights;

/// <summary>
/// Reads PyTorch checkpoints written by <c>torch.save</c> (the zip format, the default since torch 1.6): a zip with
/// <c>&lt;archive&gt;/data.pkl</c> (the pickled object) and <c>&lt;archive&gt;/data/&lt;key&gt;</c> (raw storages).
/// </summary>
/// <remarks>
/// <para>The pickle is read by a restricted unpickler that never executes Python code: it accepts only plain data,
/// <c>collections.OrderedDict</c>, <c>torch._utils._rebuild_tensor(_v2)</c>, <c>torch._utils._rebuild_parameter(_with_state)</c>
/// and the typed storage classes (<c>torch.FloatStorage</c>, …); any other global is refused with an
/// <see cref="UnsafePickleException"/> before anything else happens.</para>
/// <para>The state dict is found at the top level, or under <c>state_dict</c>, <c>model</c>, <c>model_state</c>,
/// <c>model_state_dict</c> or <c>state_dict_ema</c> (first match wins) when the top level is a training wrapper. Non-tensor
/// entries are ignored, and a <c>module.</c> prefix shared by every name (DataParallel) is removed.</para>
/// </remarks>
public static class TorchCheckpoint
{
    /// <summary>Keys under which training scripts nest the state dict, in the order they are tried.</summary>
    public static IReadOnlyList<string> WrapperKeys { get; } = new[] { "state_dict", "model", "model_state", "model_state_dict", "state_dict_ema" };

    private const long MaxPickleBytes = 1L << 30;

    // Deflate expands at most 1032:1 and a stored entry not at all, so an entry's uncompressed size beyond that is a damaged header.
    private const long MaxDeflateRatio = 1032;

    // torch.save's legacy format starts with the pickled magic number 0x1950a86a20f9469cfc6c (protocol 2, LONG1 of 10 bytes).
    private static readonly byte[] LegacyMagic = { 0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19 };

    /// <summary>Reads the checkpoint's state dict: contiguous CPU tensors with the stored dtypes, in the pickle's order.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="UnsafePickleException">The pickle references a global outside the allow-list.</exception>
    /// <exception cref="WeightFileException">The file is damaged, in the legacy format, or holds no state dict.</exception>
    public static StateDict Read(string path)
    {
        Native.TorchRuntime.EnsureLoaded();
        TensorBytes.EnsureLittleEndianHost();
        using var stream = SafeTensors.OpenRead(path);
        using var zip = OpenZip(stream, path);
        var (prefix, tensors) = Parse(zip, path, stream.Length);

        var uses = tensors.GroupBy(t => t.Tensor.Storage.Key).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var storages = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var result = new StateDict();
        try
        {
            foreach (var (name, reference) in tensors)
            {
                var storage = reference.Storage;
                if (!storages.TryGetValue(storage.Key, out var storageTensor))
                    storages[storage.Key] = storageTensor = ReadStorage(zip, prefix, storage, name, path, stream.Length);
                result.Add(name, Materialize(storageTensor, reference));
                if (--uses[storage.Key] == 0)
                {
                    storageTensor.Dispose();
                    storages.Remove(storage.Key);
                }
            }
        }
        catch
        {
            result.Dispose();
            throw;
        }
        finally
        {
            foreach (var storageTensor in storages.Values) storageTensor.Dispose();
        }
        return result;
    }

    /// <summary>Lists the tensors of the checkpoint's state dict (name, dtype, shape) from the pickle alone, without reading tensor data.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="UnsafePickleException">The pickle references a global outside the allow-list.</exception>
    /// <exception cref="WeightFileException">The file is damaged, in the legacy format, or holds no state dict.</exception>
    public static IReadOnlyList<TensorInfo> Inspect(string path)
    {
        using var stream = SafeTensors.OpenRead(path);
        using var zip = OpenZip(stream, path);
        var (_, tensors) = Parse(zip, path, stream.Length);
        return tensors.Select(t => new TensorInfo(t.Name, t.Tensor.Storage.DType, t.Tensor.Size)).ToList();
    }

    private static ZipArchive OpenZip(FileStream stream, string path)
    {
        Span<byte> head = stackalloc byte[LegacyMagic.Length];
        int read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        stream.Position = 0;
        if (read >= 2 && head[0] == 0x80)
        {
            if (read == LegacyMagic.Length && head.SequenceEqual(LegacyMagic))
                throw new WeightFileException(path,
                    $"{path}: legacy format: this checkpoint was written by torch.save before torch 1.6 or with _use_new_zipfile_serialization=False, which is not supported; " +
                    "re-save with torch.save(obj, path, _use_new_zipfile_serialization=True) or convert it to safetensors.");
            RefuseBarePickle(stream, path);
        }
        try
        {
            var zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
            try
            {
                _ = zip.Entries; // the central directory is read here, so a damaged one is reported as such
            }
            catch
            {
                zip.Dispose();
                throw;
            }
            return zip;
        }
        catch (InvalidDataException ex)
        {
            throw new WeightFileException(path, $"{path}: not a readable PyTorch checkpoint: the zip archive is damaged or truncated ({ex.Message.ReplaceLineEndings(" ")}).", inner: ex);
        }
    }

    private static void RefuseBarePickle(FileStream stream, string path)
    {
        // Read it safely first so that a malicious pickle is reported as such; a harmless one is still not a checkpoint.
        var data = new byte[Math.Min(stream.Length, MaxPickleBytes)];
        stream.ReadExactly(data);
        var unpickler = new RestrictedUnpickler(path, Path.GetFileName(path), _ =>
            throw new WeightFileException(path, $"{path}: a bare pickle with persistent references, not a torch.save zip checkpoint."));
        var root = unpickler.Load(data);
        if (FindInert(root) is { } inert) throw new UnsafePickleException(path, inert.Global);
        throw new WeightFileException(path,
            $"{path}: a bare pickle, not a torch.save checkpoint; save the state dict with torch.save(model.state_dict(), path) (zip format) or as safetensors.");
    }

    private static (string Prefix, List<(string Name, TensorRef Tensor)> Tensors) Parse(ZipArchive zip, string path, long fileLength)
    {
        var pickleEntry = zip.Entries
            .Where(e => e.FullName == "data.pkl" || (e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1))
            .OrderBy(e => e.FullName.Length)
            .FirstOrDefault()
            ?? throw new WeightFileException(path, $"{path}: a zip file without '<archive>/data.pkl', so not a torch.save checkpoint (entries: {StateDict.Preview(zip.Entries.Select(e => e.FullName), 5)}).");
        string prefix = pickleEntry.FullName[..^"data.pkl".Length];

        if (zip.GetEntry(prefix + "byteorder") is { } byteOrderEntry)
        {
            string order = Encoding.ASCII.GetString(ReadEntry(byteOrderEntry, path, 64, fileLength)).Trim();
            if (order != "little")
                throw new WeightFileException(path, $"{path}: the checkpoint was saved on a '{order}'-endian machine; only little-endian checkpoints are supported.");
        }

        var storages = new Dictionary<string, StorageRef>(StringComparer.Ordinal);
        var unpickler = new RestrictedUnpickler(path, pickleEntry.FullName, pid => PersistentLoad(pid, storages, zip, prefix, path));
        object? root = unpickler.Load(ReadEntry(pickleEntry, path, MaxPickleBytes, fileLength));
        var stateDict = SelectStateDict(root, path);

        var tensors = new List<(string Name, TensorRef Tensor)>();
        foreach (var (key, value) in stateDict.Items)
            if (key is string name && value is TensorRef tensor)
            {
                Validate(tensor, name, path);
                tensors.Add((name, tensor));
            }
        if (tensors.Count == 0)
            throw new WeightFileException(path, $"{path}: the checkpoint holds no tensors at the top level or under {string.Join(", ", WrapperKeys)} (top-level keys: {DescribeKeys(stateDict)}).");

        const string parallelPrefix = "module.";
        if (tensors.All(t => t.Name.StartsWith(parallelPrefix, StringComparison.Ordinal) && t.Name.Length > parallelPrefix.Length))
            tensors = tensors.Select(t => (t.Name[parallelPrefix.Length..], t.Tensor)).ToList();
        return (prefix, tensors);
    }

    /// <summary>
    /// The state dict of an unpickled checkpoint: the top level, or a training wrapper's entry. Values of globals outside the
    /// allow-list are inert placeholders that never ran; they may sit beside the state dict (timm's <c>args</c>), never in it.
    /// </summary>
    /// <exception cref="UnsafePickleException">The state dict (or the whole checkpoint) holds such a value.</exception>
    private static PyDict SelectStateDict(object? root, string path)
    {
        var selected = SelectCandidate(root, path);
        if (FindInert(selected) is { } inert)
            throw new UnsafePickleException(path, inert.Global);
        return selected;
    }

    /// <summary>The first inert value inside <paramref name="root"/>, depth first; iterative, since a pickle's lists and dicts may contain themselves.</summary>
    private static InertObject? FindInert(object? root)
    {
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var pending = new Stack<object?>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            var value = pending.Pop();
            if (value is InertObject inert) return inert;
            if (value is null || !seen.Add(value)) continue;
            IEnumerable<object?> children = value switch
            {
                PyDict dict => dict.Items.SelectMany(kv => new[] { kv.Key, kv.Value }),
                List<object?> list => list,
                PyTuple tuple => tuple.Items,
                _ => Array.Empty<object?>(),
            };
            foreach (var child in children.Reverse()) pending.Push(child);
        }
        return null;
    }

    private static PyDict SelectCandidate(object? root, string path)
    {
        if (root is InertObject inert) throw new UnsafePickleException(path, inert.Global);
        if (root is not PyDict top)
            throw new WeightFileException(path, $"{path}: the checkpoint holds {(root is TensorRef ? "a single tensor" : root?.GetType().Name ?? "None")}, not a state dict (a dict of tensors).");
        foreach (var key in WrapperKeys)
            if (top.Get(key) is PyDict nested && nested.Items.Any(kv => kv.Value is TensorRef))
                return nested;
        return top;
    }

    private static string DescribeKeys(PyDict dict) => dict.Count == 0 ? "none" : StateDict.Preview(dict.Items.Select(kv => PyTuple.Describe(kv.Key)), 8);

    private static StorageRef PersistentLoad(PyTuple pid, Dictionary<string, StorageRef> storages, ZipArchive zip, string prefix, string path)
    {
        // ('storage', storage_type, key, location, numel)
        var a = pid.Items;
        if (a.Length != 5 || a[0] as string != "storage" || a[1] is not PyGlobal type || a[2] is not string key || a[4] is not long numel || numel < 0)
            throw new WeightFileException(path, $"{path}: unexpected persistent id {pid} in the pickle; expected ('storage', type, key, location, numel).");
        if (!RestrictedUnpickler.StorageTypes.TryGetValue(type.Name, out var dtype) || type.Module != "torch")
            throw new WeightFileException(path, $"{path}: storage '{key}' has the unsupported type {type.FullName}.");
        if (storages.TryGetValue(key, out var existing))
        {
            if (existing.DType != dtype || existing.Numel != numel)
                throw new WeightFileException(path, $"{path}: storage '{key}' is referenced with different types or sizes ({existing.DType}×{existing.Numel} and {dtype}×{numel}).");
            return existing;
        }
        if (zip.GetEntry(prefix + "data/" + key) is null)
            throw new WeightFileException(path, $"{path}: storage '{key}' is missing: there is no zip entry '{prefix}data/{key}' (truncated or damaged checkpoint).");
        var storage = new StorageRef(key, dtype, numel, a[3] as string ?? "cpu");
        storages[key] = storage;
        return storage;
    }

    private static Tensor ReadStorage(ZipArchive zip, string prefix, StorageRef storage, string tensorName, string path, long fileLength)
    {
        string entryName = prefix + "data/" + storage.Key;
        var entry = zip.GetEntry(entryName)!;
        CheckClaimedLength(entry, path, fileLength);
        int elementSize = DTypes.ElementSize(storage.DType);
        if (storage.Numel > entry.Length / elementSize)
            throw new WeightFileException(path,
                $"{path}: tensor '{tensorName}': its storage '{entryName}' holds {entry.Length} bytes but {storage.Numel} {DTypes.Name(storage.DType)} elements need more " +
                $"({storage.Numel} × {elementSize}) (damaged checkpoint).",
                tensorName);
        var tensor = TensorBytes.Empty(new[] { storage.Numel }, storage.DType);
        try
        {
            using var data = entry.Open();
            TensorBytes.ReadInto(data, tensor);
        }
        catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException)
        {
            tensor.Dispose();
            throw new WeightFileException(path, $"{path}: tensor '{tensorName}': cannot read its storage '{entryName}' ({ex.Message.ReplaceLineEndings(" ")}); the checkpoint is damaged.", tensorName, ex);
        }
        return tensor;
    }

    /// <summary>Checks that a tensor's view lies inside its storage, before anything is allocated.</summary>
    private static void Validate(TensorRef reference, string name, string path)
    {
        long[] size = reference.Size, stride = reference.Stride;
        string view = $"offset {reference.Offset}, size [{string.Join(", ", size)}], stride [{string.Join(", ", stride)}]";
        if (size.Any(s => s < 0) || stride.Any(s => s < 0) || reference.Offset < 0)
            throw new WeightFileException(path, $"{path}: tensor '{name}': negative size, stride or offset ({view}).", name);
        if (size.Any(s => s == 0)) return;
        long last, numel;
        try
        {
            last = reference.Offset;
            numel = 1;
            for (int i = 0; i < size.Length; i++)
            {
                last = checked(last + checked((size[i] - 1) * stride[i]));
                numel = checked(numel * size[i]);
            }
        }
        catch (OverflowException)
        {
            throw new WeightFileException(path, $"{path}: tensor '{name}': impossible view ({view}) (damaged checkpoint).", name);
        }
        if (last >= reference.Storage.Numel)
            throw new WeightFileException(path,
                $"{path}: tensor '{name}': its view ({view}) reaches element {last} of storage '{reference.Storage.Key}', which holds {reference.Storage.Numel} elements (damaged checkpoint).",
                name);
        // Views with zero strides can describe far more elements than their storage holds; refuse absurd ones.
        if (numel > Math.Max(reference.Storage.Numel, 1L << 24))
            throw new WeightFileException(path,
                $"{path}: tensor '{name}': a broadcast view ({view}) of {numel} elements over a storage of {reference.Storage.Numel}; refusing to expand it (damaged checkpoint?).",
                name);
    }

    private static Tensor Materialize(Tensor storage, TensorRef reference)
    {
        using var scope = torch.NewDisposeScope();
        var result = TensorBytes.Empty(reference.Size, reference.Storage.DType);
        if (result.numel() > 0)
            result.copy_(storage.as_strided(reference.Size, reference.Stride, reference.Offset));
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Refuses an entry whose sizes the archive cannot hold, before anything is allocated from them.</summary>
    private static void CheckClaimedLength(ZipArchiveEntry entry, string path, long fileLength)
    {
        if (entry.CompressedLength > fileLength || entry.Length > Math.Max(entry.CompressedLength, 1) * MaxDeflateRatio)
            throw new WeightFileException(path,
                $"{path}: zip entry '{entry.FullName}' claims {entry.Length} bytes from {entry.CompressedLength} stored bytes in a {fileLength}-byte file, " +
                "which no zip entry can hold (damaged checkpoint).");
    }

    private static byte[] ReadEntry(ZipArchiveEntry entry, string path, long limit, long fileLength)
    {
        CheckClaimedLength(entry, path, fileLength);
        if (entry.Length > limit)
            throw new WeightFileException(path, $"{path}: zip entry '{entry.FullName}' is {entry.Length} bytes, more than the {limit}-byte limit.");
        var data = new byte[entry.Length];
        try
        {
            using var stream = entry.Open();
            stream.ReadExactly(data);
        }
        catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException)
        {
            throw new WeightFileException(path, $"{path}: cannot read zip entry '{entry.FullName}' ({ex.Message.ReplaceLineEndings(" ")}); the checkpoint is damaged.", inner: ex);
        }
        return data;
    }
}
