using System.Buffers.Binary;
using System.Numerics;
using System.Text;
using static TorchSharp.torch;

namespace Cnn.Backbones.Weights.Pickle;

/// <summary>
/// A pickle reader for PyTorch state dicts that never runs Python code. It understands the opcodes of protocols 0–5 that
/// plain data needs, resolves globals only from a fixed allow-list (OrderedDict, the tensor/parameter rebuild functions
/// and the typed storage classes), and "calls" those only through the C# implementations below. Any other global stops
/// reading at once with an <see cref="UnsafePickleException"/>.
/// </summary>
internal sealed class RestrictedUnpickler
{
    /// <summary>Storage classes by name and the element type they hold.</summary>
    internal static readonly IReadOnlyDictionary<string, ScalarType> StorageTypes = new Dictionary<string, ScalarType>(StringComparer.Ordinal)
    {
        ["FloatStorage"] = ScalarType.Float32,
        ["DoubleStorage"] = ScalarType.Float64,
        ["HalfStorage"] = ScalarType.Float16,
        ["BFloat16Storage"] = ScalarType.BFloat16,
        ["LongStorage"] = ScalarType.Int64,
        ["IntStorage"] = ScalarType.Int32,
        ["ShortStorage"] = ScalarType.Int16,
        ["CharStorage"] = ScalarType.Int8,
        ["ByteStorage"] = ScalarType.Byte,
        ["BoolStorage"] = ScalarType.Bool,
    };

    private static readonly HashSet<string> AllowedFunctions = new(StringComparer.Ordinal)
    {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "_codecs.encode",
    };

    private readonly string _filePath;
    private readonly string _streamName;
    private readonly Func<PyTuple, object?> _persistentLoad;
    private readonly List<object?> _stack = new();
    private readonly Stack<int> _marks = new();
    private readonly Dictionary<long, object?> _memo = new();
    private readonly HashSet<PyTuple> _tuples = new() { PyTuple.Empty };
    private byte[] _data = Array.Empty<byte>();
    private int _position;
    private int _opcodeStart;

    /// <param name="filePath">The weight file, for messages.</param>
    /// <param name="streamName">The pickle's name inside the file (e.g. <c>archive/data.pkl</c>), for messages.</param>
    /// <param name="persistentLoad">Resolves a persistent id (BINPERSID); for torch checkpoints, a storage reference.</param>
    public RestrictedUnpickler(string filePath, string streamName, Func<PyTuple, object?> persistentLoad)
    {
        _filePath = filePath;
        _streamName = streamName;
        _persistentLoad = persistentLoad;
    }

    /// <summary>Reads one pickle from the start of <paramref name="data"/> up to its STOP opcode.</summary>
    public object? Load(byte[] data)
    {
        _data = data;
        _position = 0;
        _stack.Clear();
        _marks.Clear();
        _memo.Clear();
        _tuples.Clear();
        _tuples.Add(PyTuple.Empty);
        while (true)
        {
            _opcodeStart = _position;
            byte opcode = ReadByte();
            switch (opcode)
            {
                case 0x80: // PROTO
                    byte protocol = ReadByte();
                    if (protocol > 5) throw Damaged($"pickle protocol {protocol} is newer than the supported 5");
                    break;
                case 0x95: // FRAME: a length prefix only; frames are read as one buffer.
                    Skip(8);
                    break;
                case (byte)'.': // STOP
                    if (_stack.Count != 1 || _marks.Count != 0) throw Damaged("STOP with a malformed stack");
                    return _stack[0];

                // Stack manipulation
                case (byte)'(': _marks.Push(_stack.Count); break; // MARK
                case (byte)'0': Pop(); break; // POP
                case (byte)'1': PopMark(); break; // POP_MARK
                case (byte)'2': Push(Peek()); break; // DUP

                // Constants
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break; // NEWTRUE
                case 0x89: Push(false); break; // NEWFALSE
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Read(4))); break; // BININT
                case (byte)'K': Push((long)ReadByte()); break; // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Read(2))); break; // BININT2
                case 0x8a: Push(ReadLong(ReadByte())); break; // LONG1
                case 0x8b: Push(ReadLong(ReadLength(BinaryPrimitives.ReadInt32LittleEndian(Read(4))))); break; // LONG4
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Read(8))); break; // BINFLOAT
                case (byte)'I': Push(ParseIntLine(ReadLine())); break; // INT (protocol 0; "01"/"00" are True/False)
                case (byte)'L': Push(ParseLongLine(ReadLine())); break; // LONG (protocol 0)
                case (byte)'F': Push(ParseFloatLine(ReadLine())); break; // FLOAT (protocol 0)

                // Strings and bytes
                case (byte)'X': Push(Utf8(Read(ReadLength(BinaryPrimitives.ReadUInt32LittleEndian(Read(4)))))); break; // BINUNICODE
                case 0x8c: Push(Utf8(Read(ReadByte()))); break; // SHORT_BINUNICODE
                case 0x8d: Push(Utf8(Read(ReadLength(BinaryPrimitives.ReadUInt64LittleEndian(Read(8)))))); break; // BINUNICODE8
                case (byte)'T': Push(Encoding.Latin1.GetString(Read(ReadLength(BinaryPrimitives.ReadInt32LittleEndian(Read(4)))))); break; // BINSTRING
                case (byte)'U': Push(Encoding.Latin1.GetString(Read(ReadByte()))); break; // SHORT_BINSTRING
                case (byte)'B': Push(Read(ReadLength(BinaryPrimitives.ReadUInt32LittleEndian(Read(4)))).ToArray()); break; // BINBYTES
                case (byte)'C': Push(Read(ReadByte()).ToArray()); break; // SHORT_BINBYTES
                case 0x8e: Push(Read(ReadLength(BinaryPrimitives.ReadUInt64LittleEndian(Read(8)))).ToArray()); break; // BINBYTES8
                case 0x96: Push(Read(ReadLength(BinaryPrimitives.ReadUInt64LittleEndian(Read(8)))).ToArray()); break; // BYTEARRAY8

                // Containers
                case (byte)')': Push(PyTuple.Empty); break; // EMPTY_TUPLE
                case (byte)'t': Push(Tuple(PopMark().ToArray())); break; // TUPLE
                case 0x85: Push(Tuple(PopMany(1))); break; // TUPLE1
                case 0x86: Push(Tuple(PopMany(2))); break; // TUPLE2
                case 0x87: Push(Tuple(PopMany(3))); break; // TUPLE3
                case (byte)']': Push(new List<object?>()); break; // EMPTY_LIST
                case (byte)'l': Push(PopMark()); break; // LIST
                case (byte)'a': { var item = Pop(); AsList(Peek(), "APPEND").Add(item); break; } // APPEND
                case (byte)'e': { var items = PopMark(); AsList(Peek(), "APPENDS").AddRange(items); break; } // APPENDS
                case (byte)'}': Push(new PyDict()); break; // EMPTY_DICT
                case (byte)'d': Push(DictFrom(PopMark())); break; // DICT
                case (byte)'s': { var value = Pop(); var key = Pop(); AsDict(Peek(), "SETITEM").Set(key, value); break; } // SETITEM
                case (byte)'u': // SETITEMS
                {
                    var items = PopMark();
                    if (items.Count % 2 != 0) throw Damaged("SETITEMS with an odd number of items");
                    var dict = AsDict(Peek(), "SETITEMS");
                    for (int i = 0; i < items.Count; i += 2) dict.Set(items[i], items[i + 1]);
                    break;
                }
                case 0x8f: Push(new List<object?>()); break; // EMPTY_SET (kept as a list)
                case 0x90: { var items = PopMark(); AsList(Peek(), "ADDITEMS").AddRange(items); break; } // ADDITEMS
                case 0x91: Push(PopMark()); break; // FROZENSET

                // Memo
                case (byte)'p': _memo[ParseIndexLine(ReadLine())] = Peek(); break; // PUT
                case (byte)'q': _memo[ReadByte()] = Peek(); break; // BINPUT
                case (byte)'r': _memo[BinaryPrimitives.ReadUInt32LittleEndian(Read(4))] = Peek(); break; // LONG_BINPUT
                case 0x94: _memo[_memo.Count] = Peek(); break; // MEMOIZE
                case (byte)'g': Push(MemoGet(ParseIndexLine(ReadLine()))); break; // GET
                case (byte)'h': Push(MemoGet(ReadByte())); break; // BINGET
                case (byte)'j': Push(MemoGet(BinaryPrimitives.ReadUInt32LittleEndian(Read(4)))); break; // LONG_BINGET

                // Globals and calls: only allow-listed names, only our own implementations.
                case (byte)'c': // GLOBAL "module\nname\n"
                {
                    string module = ReadLine(), name = ReadLine();
                    Push(ResolveGlobal(module, name));
                    break;
                }
                case 0x93: // STACK_GLOBAL
                {
                    var name = Pop();
                    var module = Pop();
                    if (module is not string m || name is not string n) throw Damaged("STACK_GLOBAL needs two strings");
                    Push(ResolveGlobal(m, n));
                    break;
                }
                case (byte)'R': // REDUCE
                {
                    var args = Pop();
                    var callable = Pop();
                    if (args is not PyTuple tuple) throw Damaged($"REDUCE arguments must be a tuple, found {Describe(args)}");
                    Push(Call(callable, tuple));
                    break;
                }
                case 0x81: // NEWOBJ: cls.__new__(cls, *args)
                {
                    var args = Pop();
                    var cls = Pop();
                    Push(New(cls, args as PyTuple ?? throw Damaged("NEWOBJ arguments must be a tuple")));
                    break;
                }
                case 0x92: // NEWOBJ_EX
                {
                    Pop(); // kwargs
                    var args = Pop();
                    var cls = Pop();
                    Push(New(cls, args as PyTuple ?? throw Damaged("NEWOBJ_EX arguments must be a tuple")));
                    break;
                }
                case (byte)'b': // BUILD: only the attribute dict of an OrderedDict (its '_metadata'), which is ignored.
                {
                    var state = Pop();
                    var target = Peek();
                    if (target is InertObject) break; // an inert placeholder's state is never applied
                    if (target is not PyDict)
                        throw Damaged($"BUILD (setting object state) on {Describe(target)} is not something a state dict needs");
                    _ = state;
                    break;
                }
                case (byte)'Q': // BINPERSID
                {
                    var pid = Pop();
                    if (pid is not PyTuple tuple) throw Damaged($"persistent id must be a tuple, found {Describe(pid)}");
                    Push(_persistentLoad(tuple));
                    break;
                }
                case (byte)'i': // INST "module\nname\n": class instantiation
                {
                    string module = ReadLine(), name = ReadLine();
                    ResolveGlobal(module, name);
                    throw Damaged($"INST of {module}.{name} is not supported");
                }
                case (byte)'o': throw Damaged("OBJ (object instantiation) is not supported");
                case (byte)'P': throw Damaged("text persistent ids (PERSID) are not used by torch.save");
                case 0x82 or 0x83 or 0x84: throw new UnsafePickleException(_filePath, "<copyreg extension code>");
                case 0x97 or 0x98: throw Damaged("out-of-band buffers (protocol 5 NEXT_BUFFER/READONLY_BUFFER) are not supported");
                default:
                    throw Damaged($"unknown pickle opcode 0x{opcode:x2}");
            }
        }
    }

    private object ResolveGlobal(string module, string name)
    {
        string full = $"{module}.{name}";
        if (module == "torch" && StorageTypes.ContainsKey(name)) return new PyGlobal(module, name);
        if (AllowedFunctions.Contains(full)) return new PyGlobal(module, name);
        return new InertObject(full); // never called: only a state dict free of such values is returned (TorchCheckpoint)
    }

    private object? Call(object? callable, PyTuple args)
    {
        if (callable is InertObject inert) return inert;
        if (callable is not PyGlobal function) throw Damaged($"REDUCE on {Describe(callable)}, which is not callable");
        var a = args.Items;
        switch (function.FullName)
        {
            case "collections.OrderedDict":
            {
                var dict = new PyDict();
                if (a.Length == 1 && a[0] is List<object?> pairs)
                    foreach (var pair in pairs)
                    {
                        if (pair is not PyTuple { Items.Length: 2 } kv) throw Damaged("OrderedDict items must be (key, value) pairs");
                        dict.Set(kv.Items[0], kv.Items[1]);
                    }
                else if (a.Length != 0) throw Damaged($"OrderedDict called with {args}");
                return dict;
            }
            case "torch._utils._rebuild_tensor":
                RequireArgs(function, a, 4, 4);
                return RebuildTensor(a);
            case "torch._utils._rebuild_tensor_v2":
                // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                RequireArgs(function, a, 6, 7);
                return RebuildTensor(a);
            case "torch._utils._rebuild_parameter":
                RequireArgs(function, a, 3, 3);
                return a[0] as TensorRef ?? throw Damaged($"_rebuild_parameter expects a tensor, found {Describe(a[0])}");
            case "torch._utils._rebuild_parameter_with_state":
                RequireArgs(function, a, 4, 4);
                return a[0] as TensorRef ?? throw Damaged($"_rebuild_parameter_with_state expects a tensor, found {Describe(a[0])}");
            case "_codecs.encode":
                // Protocol 2 pickles Python bytes as _codecs.encode(text, 'latin1').
                if (a.Length is < 1 or > 2 || a[0] is not string text) throw Damaged($"_codecs.encode called with {args}");
                string encoding = a.Length == 2 ? a[1] as string ?? "" : "utf-8";
                return encoding.ToLowerInvariant() switch
                {
                    "latin1" or "latin-1" or "iso-8859-1" => Encoding.Latin1.GetBytes(text),
                    "utf-8" or "utf8" => Encoding.UTF8.GetBytes(text),
                    _ => throw Damaged($"_codecs.encode with encoding '{encoding}' is not supported"),
                };
            default:
                throw Damaged($"{function.FullName} cannot be called");
        }
    }

    private object New(object? cls, PyTuple args)
    {
        if (cls is PyGlobal { FullName: "collections.OrderedDict" } && args.Items.Length == 0) return new PyDict();
        if (cls is InertObject inert) return inert;
        throw Damaged($"creating an instance of {Describe(cls)} is not supported");
    }

    private TensorRef RebuildTensor(object?[] a)
    {
        if (a[0] is not StorageRef storage) throw Damaged($"tensor rebuild expects a storage, found {Describe(a[0])}");
        if (a[1] is not long offset) throw Damaged($"tensor storage offset must be an integer, found {Describe(a[1])}");
        long[] size = Integers(a[2], "size");
        long[] stride = Integers(a[3], "stride");
        if (size.Length != stride.Length) throw Damaged($"tensor size {a[2]} and stride {a[3]} differ in length");
        return new TensorRef(storage, offset, size, stride);
    }

    private long[] Integers(object? value, string what)
    {
        if (value is not PyTuple tuple) throw Damaged($"tensor {what} must be a tuple, found {Describe(value)}");
        var result = new long[tuple.Items.Length];
        for (int i = 0; i < result.Length; i++)
            result[i] = tuple.Items[i] as long? ?? throw Damaged($"tensor {what} {tuple} must hold integers");
        return result;
    }

    private void RequireArgs(PyGlobal function, object?[] args, int min, int max)
    {
        if (args.Length < min || args.Length > max)
            throw Damaged($"{function.FullName} called with {args.Length} arguments, expected {(min == max ? $"{min}" : $"{min} to {max}")}");
    }

    /// <summary>A new tuple, or the equal one made before (interned: see <see cref="PyTuple"/>).</summary>
    private PyTuple Tuple(object?[] items)
    {
        var tuple = new PyTuple(items);
        if (tuple.Depth > PyTuple.MaxDepth) throw Damaged($"tuples nested more than {PyTuple.MaxDepth} deep");
        if (_tuples.TryGetValue(tuple, out var interned)) return interned;
        _tuples.Add(tuple);
        return tuple;
    }

    private PyDict DictFrom(List<object?> items)
    {
        if (items.Count % 2 != 0) throw Damaged("DICT with an odd number of items");
        var dict = new PyDict();
        for (int i = 0; i < items.Count; i += 2) dict.Set(items[i], items[i + 1]);
        return dict;
    }

    private List<object?> AsList(object? value, string opcode) =>
        value as List<object?> ?? throw Damaged($"{opcode} on {Describe(value)}, which is not a list");

    private PyDict AsDict(object? value, string opcode) =>
        value as PyDict ?? throw Damaged($"{opcode} on {Describe(value)}, which is not a dict");

    private object? MemoGet(long index) =>
        _memo.TryGetValue(index, out var value) ? value : throw Damaged($"memo entry {index} is read before it is written");

    private void Push(object? value) => _stack.Add(value);

    private object? Peek()
    {
        int floor = _marks.Count > 0 ? _marks.Peek() : 0;
        if (_stack.Count <= floor) throw Damaged("stack underflow");
        return _stack[^1];
    }

    private object? Pop()
    {
        var value = Peek();
        _stack.RemoveAt(_stack.Count - 1);
        return value;
    }

    private object?[] PopMany(int count)
    {
        int floor = _marks.Count > 0 ? _marks.Peek() : 0;
        if (_stack.Count - count < floor) throw Damaged("stack underflow");
        var items = _stack.GetRange(_stack.Count - count, count).ToArray();
        _stack.RemoveRange(_stack.Count - count, count);
        return items;
    }

    private List<object?> PopMark()
    {
        if (_marks.Count == 0) throw Damaged("no MARK on the stack");
        int mark = _marks.Pop();
        var items = _stack.GetRange(mark, _stack.Count - mark);
        _stack.RemoveRange(mark, _stack.Count - mark);
        return items;
    }

    private byte ReadByte()
    {
        if (_position >= _data.Length) throw Damaged("the pickle ends early (truncated)");
        return _data[_position++];
    }

    private ReadOnlySpan<byte> Read(int count)
    {
        if (count < 0 || count > _data.Length - _position) throw Damaged("the pickle ends early (truncated)");
        var span = _data.AsSpan(_position, count);
        _position += count;
        return span;
    }

    private void Skip(int count) => Read(count);

    private int ReadLength(long length)
    {
        if (length < 0 || length > _data.Length - _position) throw Damaged($"a length of {length} runs past the end of the pickle");
        return (int)length;
    }

    private int ReadLength(ulong length) => ReadLength(length > long.MaxValue ? -1 : (long)length);

    private string ReadLine()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _position);
        if (end < 0) throw Damaged("the pickle ends inside a text line (truncated)");
        string line = Encoding.UTF8.GetString(_data, _position, end - _position);
        _position = end + 1;
        return line;
    }

    private object ReadLong(int byteCount)
    {
        var bytes = Read(byteCount);
        if (bytes.Length == 0) return 0L;
        var value = new BigInteger(bytes, isUnsigned: false, isBigEndian: false);
        // (object) on both branches: a conditional of long and BigInteger would be a BigInteger, which no size or offset check accepts.
        return value >= long.MinValue && value <= long.MaxValue ? (object)(long)value : value;
    }

    private object ParseIntLine(string line) => line switch
    {
        "00" => false,
        "01" => true,
        _ => long.TryParse(line, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out long v)
            ? v : throw Damaged($"INT '{line}' is not an integer"),
    };

    private object ParseLongLine(string line)
    {
        string digits = line.EndsWith('L') ? line[..^1] : line;
        return BigInteger.TryParse(digits, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var value)
            ? (value >= long.MinValue && value <= long.MaxValue ? (object)(long)value : value)
            : throw Damaged($"LONG '{line}' is not an integer");
    }

    private double ParseFloatLine(string line) =>
        double.TryParse(line, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double v)
            ? v : throw Damaged($"FLOAT '{line}' is not a number");

    private long ParseIndexLine(string line) =>
        long.TryParse(line, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long v)
            ? v : throw Damaged($"memo index '{line}' is not an integer");

    private string Utf8(ReadOnlySpan<byte> bytes)
    {
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Damaged("a string is not valid UTF-8");
        }
    }

    private static string Describe(object? value) => value switch
    {
        null => "None",
        string s => $"the string '{(s.Length > 40 ? s[..40] + "…" : s)}'",
        PyGlobal g => g.FullName,
        InertObject inert => inert.Global,
        PyDict => "a dict",
        List<object?> => "a list",
        PyTuple t => $"the tuple {t}",
        TensorRef => "a tensor",
        StorageRef => "a storage",
        _ => $"a {value.GetType().Name}",
    };

    private WeightFileException Damaged(string what) =>
        new(_filePath, $"{_filePath}: cannot read the pickle '{_streamName}': {what} (at byte {_opcodeStart}); the file is damaged or not a PyTorch state dict.");
}
