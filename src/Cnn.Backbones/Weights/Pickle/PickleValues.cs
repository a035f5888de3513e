using static TorchSharp.torch;

namespace Cnn.Backbones.Weights.Pickle;

/// <summary>A Python tuple produced by the restricted unpickler.</summary>
/// <remarks>
/// A pickle can share one tuple many times (DUP, memo), so 64 levels of <c>(t, t)</c> take a few bytes and describe 2^64 leaves:
/// nothing here walks the whole tree. The hash is computed once from the items' hashes; the unpickler interns tuples, so two
/// equal tuples inside a pickle are one object and <see cref="Equals"/> compares nested tuples by reference; descriptions stop
/// three levels down.
/// </remarks>
internal sealed class PyTuple
{
    public const int MaxDepth = 64;

    private const int DescribedDepth = 3;

    private readonly int _hash;

    public PyTuple(object?[] items)
    {
        Items = items;
        Depth = 1 + items.Select(i => i is PyTuple t ? t.Depth : 0).DefaultIfEmpty(0).Max();
        _hash = items.Aggregate(17, (h, item) => h * 31 + (item is null ? 0 : PyKeyComparer.Instance.GetHashCode(item)));
    }

    public object?[] Items { get; }

    /// <summary>1 for a tuple without tuples inside, 2 for a tuple of such tuples, and so on.</summary>
    public int Depth { get; }

    public static readonly PyTuple Empty = new(Array.Empty<object?>());

    /// <summary>Equal items; nested tuples must be the same object (the unpickler interns them, so equal ones are).</summary>
    public override bool Equals(object? obj) => ReferenceEquals(this, obj) || obj is PyTuple other && _hash == other._hash &&
        Items.Length == other.Items.Length &&
        Items.Zip(other.Items).All(p => p.First is PyTuple || p.Second is PyTuple ? ReferenceEquals(p.First, p.Second) : PyKeyComparer.Instance.Equals(p.First, p.Second));

    public override int GetHashCode() => _hash;

    public override string ToString() => Format(DescribedDepth);

    private string Format(int levels)
    {
        if (levels == 0) return Items.Length == 0 ? "()" : "(…)";
        string text = "(" + string.Join(", ", Items.Take(8).Select(i => i is PyTuple t ? t.Format(levels - 1) : Describe(i))) +
                      (Items.Length > 8 ? ", …" : "") + (Items.Length == 1 ? ",)" : ")");
        return text.Length > 200 ? text[..200] + "…" : text;
    }

    internal static string Describe(object? value) => value switch
    {
        null => "None",
        string s => $"'{s}'",
        _ => value.ToString() ?? "?",
    };
}

/// <summary>An insertion-ordered Python dict (also what <c>collections.OrderedDict()</c> builds).</summary>
internal sealed class PyDict
{
    private readonly Dictionary<object, int> _index = new(PyKeyComparer.Instance);
    private readonly List<KeyValuePair<object?, object?>> _items = new();

    public IReadOnlyList<KeyValuePair<object?, object?>> Items => _items;

    public int Count => _items.Count;

    public void Set(object? key, object? value)
    {
        object boxed = key ?? PyNoneKey.Instance;
        if (_index.TryGetValue(boxed, out int position))
            _items[position] = new KeyValuePair<object?, object?>(key, value);
        else
        {
            _index[boxed] = _items.Count;
            _items.Add(new KeyValuePair<object?, object?>(key, value));
        }
    }

    public object? Get(string key) => _index.TryGetValue(key, out int position) ? _items[position].Value : null;

    public override string ToString() => $"dict({Count} items)";

    private sealed class PyNoneKey
    {
        public static readonly PyNoneKey Instance = new();
    }
}

/// <summary>Key equality close enough to Python's for dict keys read from a pickle (strings, numbers, tuples, bytes).</summary>
internal sealed class PyKeyComparer : IEqualityComparer<object>
{
    public static readonly PyKeyComparer Instance = new();

    public new bool Equals(object? x, object? y) => (x, y) switch
    {
        (null, null) => true,
        (long a, long b) => a == b,
        (long a, double b) => a == b,
        (double a, long b) => a == b,
        (bool a, long b) => (a ? 1 : 0) == b,
        (long a, bool b) => a == (b ? 1 : 0),
        (byte[] a, byte[] b) => a.AsSpan().SequenceEqual(b),
        _ => x is not null && x.Equals(y),
    };

    public int GetHashCode(object obj) => obj switch
    {
        bool b => (b ? 1L : 0L).GetHashCode(),
        double d when d == Math.Floor(d) && Math.Abs(d) < 9e18 => ((long)d).GetHashCode(),
        byte[] bytes => bytes.Length,
        _ => obj.GetHashCode(),
    };
}

/// <summary>An allowed Python global (class or function), named <c>module.name</c>.</summary>
internal sealed record PyGlobal(string Module, string Name)
{
    public string FullName => $"{Module}.{Name}";

    public override string ToString() => FullName;
}

/// <summary>
/// What a global outside the allow-list unpickles to, and anything called, instantiated or built from it: an inert placeholder
/// that records the global's name and is never executed. A checkpoint may hold such values beside its state dict (timm's
/// <c>args: argparse.Namespace</c>); a state dict that holds one is refused (<see cref="UnsafePickleException"/>).
/// </summary>
/// <param name="Global">The global, as <c>module.name</c>.</param>
internal sealed record InertObject(string Global)
{
    public override string ToString() => $"<{Global} (not loaded)>";
}

/// <summary>A checkpoint storage: zip entry <c>data/&lt;Key&gt;</c> holding <see cref="Numel"/> elements of <see cref="DType"/>.</summary>
internal sealed record StorageRef(string Key, ScalarType DType, long Numel, string Location);

/// <summary>A tensor as the pickle describes it: a strided view into a storage. No data is read until it is materialized.</summary>
internal sealed record TensorRef(StorageRef Storage, long Offset, long[] Size, long[] Stride)
{
    public override string ToString() => $"tensor[{string.Join(", ", Size)}]";
}
