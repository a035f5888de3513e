using System.Collections;
using System.Diagnostics.CodeAnalysis;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Weights;

/// <summary>
/// An ordered map from parameter/buffer name to tensor, as read from a weight file or taken from a module.
/// Insertion order is kept. The dictionary owns its tensors: <see cref="Dispose"/> disposes them all.
/// </summary>
/// <remarks>Keys are compared ordinally (case-sensitive), as in PyTorch.</remarks>
public sealed class StateDict : IReadOnlyDictionary<string, Tensor>, IDisposable
{
    private readonly List<string> _order = new();
    private readonly Dictionary<string, Tensor> _tensors = new(StringComparer.Ordinal);
    private bool _disposed;

    /// <summary>Creates an empty state dict.</summary>
    public StateDict() { }

    /// <summary>
    /// Free-form string metadata carried with the weights (the <c>__metadata__</c> map of a safetensors file).
    /// <see cref="SafeTensors.Write(string, IEnumerable{KeyValuePair{string, Tensor}}, IReadOnlyDictionary{string, string}?)"/>
    /// writes it when no other metadata is given.
    /// </summary>
    public IDictionary<string, string> Metadata { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>The number of tensors.</summary>
    public int Count => _order.Count;

    /// <summary>Names in insertion order.</summary>
    public IEnumerable<string> Keys => _order;

    /// <summary>Tensors in insertion order.</summary>
    public IEnumerable<Tensor> Values => _order.Select(k => _tensors[k]);

    /// <summary>The tensor named <paramref name="key"/>.</summary>
    /// <exception cref="KeyNotFoundException">No tensor has that name; the message lists a few names that do exist.</exception>
    public Tensor this[string key]
    {
        get
        {
            ThrowIfDisposed();
            if (_tensors.TryGetValue(key, out var tensor)) return tensor;
            throw new KeyNotFoundException($"The state dict has no tensor named '{key}' (it has {Count}: {Preview(_order, 5)}).");
        }
    }

    /// <summary>
    /// The total number of elements over all entries except BatchNorm's <c>num_batches_tracked</c> counters
    /// (entries whose name ends with <c>num_batches_tracked</c>). Buffers such as running statistics are counted;
    /// this matches the count of a weight file's stored numbers, not only trainable parameters.
    /// </summary>
    public long TotalParameters
    {
        get
        {
            ThrowIfDisposed();
            long total = 0;
            foreach (var name in _order)
                if (!TensorInfo.IsBatchCounter(name))
                    total += _tensors[name].numel();
            return total;
        }
    }

    /// <summary>
    /// Adds a tensor at the end. The state dict takes ownership: the tensor is detached from any dispose scope
    /// and disposed with the dict.
    /// </summary>
    /// <exception cref="ArgumentException">The name is empty or already present.</exception>
    public void Add(string name, Tensor tensor)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(tensor);
        if (name.Length == 0) throw new ArgumentException("A tensor name must not be empty.", nameof(name));
        if (_tensors.ContainsKey(name)) throw new ArgumentException($"The state dict already has a tensor named '{name}'.", nameof(name));
        tensor.DetachFromDisposeScope();
        _tensors.Add(name, tensor);
        _order.Add(name);
    }

    /// <summary>Removes the tensor named <paramref name="name"/> and disposes it. Returns false when there is none.</summary>
    public bool Remove(string name)
    {
        ThrowIfDisposed();
        if (!_tensors.Remove(name, out var tensor)) return false;
        _order.Remove(name);
        tensor.Dispose();
        return true;
    }

    /// <summary>True when a tensor has that name.</summary>
    public bool ContainsKey(string key) => _tensors.ContainsKey(key);

    /// <summary>Gets the tensor with that name, if any.</summary>
    public bool TryGetValue(string key, [MaybeNullWhen(false)] out Tensor value) => _tensors.TryGetValue(key, out value);

    /// <summary>
    /// Strips <paramref name="prefix"/> (e.g. <c>"module."</c> from a DataParallel checkpoint) from every name that starts
    /// with it; other names are kept as they are. Order is kept. Returns the number of renamed entries.
    /// </summary>
    /// <exception cref="ArgumentException">Stripping would make two names equal; nothing is renamed then.</exception>
    public int RemovePrefix(string prefix)
    {
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        int renamed = 0;
        Rename(name =>
        {
            if (!name.StartsWith(prefix, StringComparison.Ordinal) || name.Length == prefix.Length) return name;
            renamed++;
            return name[prefix.Length..];
        });
        return renamed;
    }

    /// <summary>Renames one entry, keeping its position.</summary>
    /// <exception cref="KeyNotFoundException"><paramref name="oldName"/> is absent.</exception>
    /// <exception cref="ArgumentException"><paramref name="newName"/> is empty or already used by another entry.</exception>
    public void Rename(string oldName, string newName)
    {
        ThrowIfDisposed();
        if (!_tensors.ContainsKey(oldName))
            throw new KeyNotFoundException($"Cannot rename '{oldName}': the state dict has no such tensor.");
        Rename(name => name == oldName ? newName : name);
    }

    /// <summary>
    /// Renames every entry with <paramref name="map"/> (name → new name), keeping order. A null result drops the entry
    /// and disposes its tensor. The renaming is all-or-nothing: it is checked before anything changes.
    /// </summary>
    /// <exception cref="ArgumentException">Two entries would get the same name, or a new name is empty.</exception>
    public void Rename(Func<string, string?> map)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(map);
        var newNames = new List<string?>(_order.Count);
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in _order)
        {
            string? mapped = map(name);
            if (mapped is not null)
            {
                if (mapped.Length == 0)
                    throw new ArgumentException($"Renaming '{name}' gave an empty name.", nameof(map));
                if (!seen.TryAdd(mapped, name))
                    throw new ArgumentException($"Renaming would give both '{seen[mapped]}' and '{name}' the name '{mapped}'; nothing was renamed.", nameof(map));
            }
            newNames.Add(mapped);
        }
        var old = _order.ToArray();
        var tensors = new Dictionary<string, Tensor>(_tensors, StringComparer.Ordinal);
        _order.Clear();
        _tensors.Clear();
        for (int i = 0; i < old.Length; i++)
        {
            var tensor = tensors[old[i]];
            if (newNames[i] is { } newName)
            {
                _order.Add(newName);
                _tensors.Add(newName, tensor);
            }
            else
            {
                tensor.Dispose();
            }
        }
    }

    /// <summary>
    /// Copies a module's <c>state_dict()</c> (parameters and persistent buffers) into a new state dict of detached CPU copies.
    /// </summary>
    public static StateDict FromModule(nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        var result = new StateDict();
        try
        {
            using var noGrad = torch.no_grad();
            foreach (var (name, tensor) in module.state_dict())
                result.Add(name, tensor.detach().cpu().clone());
        }
        catch
        {
            result.Dispose();
            throw;
        }
        return result;
    }

    /// <summary>Enumerates the entries in insertion order.</summary>
    public IEnumerator<KeyValuePair<string, Tensor>> GetEnumerator()
    {
        ThrowIfDisposed();
        foreach (var name in _order)
            yield return new KeyValuePair<string, Tensor>(name, _tensors[name]);
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Disposes every tensor and empties the dict.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var tensor in _tensors.Values) tensor.Dispose();
        _tensors.Clear();
        _order.Clear();
    }

    internal static string Preview(IEnumerable<string> names, int max)
    {
        var list = names.Take(max + 1).ToList();
        string text = string.Join(", ", list.Take(max));
        return list.Count > max ? text + ", …" : text;
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);
}
