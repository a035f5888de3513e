using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Weights;

/// <summary>
/// Reads and writes the <a href="https://github.com/huggingface/safetensors">safetensors</a> format: an 8-byte little-endian
/// header length, a JSON header (<c>{"name": {"dtype", "shape", "data_offsets"}, "__metadata__": {...}}</c>), then raw
/// little-endian tensor bytes. Headers are validated strictly before any tensor is created.
/// </summary>
public static class SafeTensors
{
    /// <summary>The largest header accepted (100 MB), as in the reference implementation.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    internal sealed record Entry(string Name, ScalarType DType, long[] Shape, long Begin, long End);

    internal sealed record Header(IReadOnlyList<Entry> Entries, IReadOnlyDictionary<string, string> Metadata, long DataStart);

    /// <summary>Reads every tensor of a safetensors file into a new <see cref="StateDict"/> (CPU tensors, file order), with its metadata.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="WeightFileException">The file is truncated or its header is invalid; the message says which tensor and what is wrong.</exception>
    public static StateDict Read(string path)
    {
        Native.TorchRuntime.EnsureLoaded();
        TensorBytes.EnsureLittleEndianHost();
        using var stream = OpenRead(path);
        var header = ReadHeader(stream, path);
        var result = new StateDict();
        try
        {
            foreach (var (key, value) in header.Metadata) result.Metadata[key] = value;
            foreach (var entry in header.Entries)
            {
                var tensor = TensorBytes.Empty(entry.Shape, entry.DType);
                try
                {
                    stream.Position = header.DataStart + entry.Begin;
                    TensorBytes.ReadInto(stream, tensor);
                }
                catch (EndOfStreamException ex)
                {
                    tensor.Dispose();
                    throw new WeightFileException(path, $"{path}: tensor '{entry.Name}': the file ends inside its data (truncated file).", entry.Name, ex);
                }
                result.Add(entry.Name, tensor);
            }
        }
        catch
        {
            result.Dispose();
            throw;
        }
        return result;
    }

    /// <summary>The <c>__metadata__</c> of a safetensors file's header (empty when it has none), after validating the header.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="WeightFileException">The header is invalid.</exception>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path)
    {
        using var stream = OpenRead(path);
        return ReadHeader(stream, path).Metadata;
    }

    /// <summary>Lists the tensors of a safetensors file (name, dtype, shape) from its header alone, after validating it.</summary>
    public static IReadOnlyList<TensorInfo> Inspect(string path)
    {
        using var stream = OpenRead(path);
        return ReadHeader(stream, path).Entries.Select(e => new TensorInfo(e.Name, e.DType, e.Shape)).ToList();
    }

    /// <summary>
    /// Writes tensors to a safetensors file, in the given order, with optional string metadata. When
    /// <paramref name="metadata"/> is null and <paramref name="tensors"/> is a <see cref="StateDict"/>, its
    /// <see cref="StateDict.Metadata"/> is written. Tensors may live on any device and need not be contiguous.
    /// The file is written to a temporary name and then moved into place.
    /// </summary>
    /// <exception cref="ArgumentException">A name is repeated or empty, or a name is <c>__metadata__</c>.</exception>
    /// <exception cref="NotSupportedException">A tensor's type has no safetensors dtype here.</exception>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        TensorBytes.EnsureLittleEndianHost();
        var list = tensors.ToList();
        if (metadata is null && tensors is StateDict dict && dict.Metadata.Count > 0)
            metadata = new Dictionary<string, string>(dict.Metadata);

        var names = new HashSet<string>(StringComparer.Ordinal);
        using var headerBuffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(headerBuffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata) json.WriteString(key, value);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, tensor) in list)
            {
                if (string.IsNullOrEmpty(name)) throw new ArgumentException("A tensor name must not be empty.", nameof(tensors));
                if (name == "__metadata__") throw new ArgumentException("'__metadata__' is reserved in safetensors and cannot name a tensor.", nameof(tensors));
                if (!names.Add(name)) throw new ArgumentException($"The tensor name '{name}' appears twice.", nameof(tensors));
                long bytes = tensor.numel() * DTypes.ElementSize(tensor.dtype);
                json.WriteStartObject(name);
                json.WriteString("dtype", DTypes.SafeTensorsName(tensor.dtype));
                json.WriteStartArray("shape");
                foreach (long d in tensor.shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        // Pad the header with spaces so the data section starts 8-byte aligned, as the reference writer does.
        long headerLength = headerBuffer.Length;
        int padding = (int)((8 - headerLength % 8) % 8);
        for (int i = 0; i < padding; i++) headerBuffer.WriteByte((byte)' ');

        string temporary = path + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> length = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)headerBuffer.Length);
                stream.Write(length);
                headerBuffer.Position = 0;
                headerBuffer.CopyTo(stream);
                foreach (var (_, tensor) in list) TensorBytes.Write(stream, tensor);
            }
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
    }

    internal static FileStream OpenRead(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Weight file not found: {path}", path);
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
    }

    internal static Header ReadHeader(Stream stream, string path)
    {
        long fileLength = stream.Length;
        if (fileLength < 8)
            throw new WeightFileException(path, $"{path}: not a safetensors file: it has {fileLength} bytes, fewer than the 8-byte header length (truncated or empty file).");
        Span<byte> lengthBytes = stackalloc byte[8];
        stream.Position = 0;
        stream.ReadExactly(lengthBytes);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength > MaxHeaderBytes)
            throw new WeightFileException(path, $"{path}: not a safetensors file (or a damaged one): its header length field says {headerLength} bytes, more than the {MaxHeaderBytes}-byte limit.");
        if ((long)headerLength > fileLength - 8)
            throw new WeightFileException(path, $"{path}: safetensors header length {headerLength} is larger than the rest of the file ({fileLength - 8} bytes): the file is truncated or not a safetensors file.");
        var headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        long dataStart = 8 + (long)headerLength;
        long dataLength = fileLength - dataStart;

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(headerBytes, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException ex)
        {
            throw new WeightFileException(path, $"{path}: the safetensors header is not valid JSON ({ex.Message.ReplaceLineEndings(" ")}).", inner: ex);
        }
        using (document)
        {
            try
            {
                return ParseHeader(document.RootElement, path, dataLength, dataStart);
            }
            catch (InvalidOperationException ex)
            {
                // JsonDocument checks a string's UTF-8 only when it is read.
                throw new WeightFileException(path, $"{path}: the safetensors header holds a name or value that is not valid UTF-8 ({ex.Message.ReplaceLineEndings(" ")}).", inner: ex);
            }
        }
    }

    private static Header ParseHeader(JsonElement root, string path, long dataLength, long dataStart)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw new WeightFileException(path, $"{path}: the safetensors header must be a JSON object, found {root.ValueKind}.");
        var entries = new List<Entry>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in root.EnumerateObject())
        {
            string name = property.Name;
            if (!names.Add(name))
                throw new WeightFileException(path, $"{path}: the safetensors header lists '{name}' twice.", name);
            if (name == "__metadata__")
            {
                if (property.Value.ValueKind != JsonValueKind.Object)
                    throw new WeightFileException(path, $"{path}: '__metadata__' must be an object of strings, found {property.Value.ValueKind}.");
                foreach (var item in property.Value.EnumerateObject())
                {
                    if (item.Value.ValueKind != JsonValueKind.String)
                        throw new WeightFileException(path, $"{path}: '__metadata__' entry '{item.Name}' must be a string, found {item.Value.ValueKind}.");
                    metadata[item.Name] = item.Value.GetString()!;
                }
                continue;
            }
            entries.Add(ParseEntry(path, name, property.Value, dataLength));
        }
        CheckOverlaps(path, entries);
        return new Header(entries, metadata, dataStart);
    }

    private static Entry ParseEntry(string path, string name, JsonElement value, long dataLength)
    {
        string Where() => $"{path}: tensor '{name}'";
        if (value.ValueKind != JsonValueKind.Object)
            throw new WeightFileException(path, $"{Where()}: header entry must be an object with dtype, shape and data_offsets, found {value.ValueKind}.", name);
        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new WeightFileException(path, $"{Where()}: missing or non-string 'dtype'.", name);
        string dtypeName = dtypeElement.GetString()!;
        if (!DTypes.TryParseSafeTensors(dtypeName, out var dtype))
            throw new WeightFileException(path, $"{Where()}: unknown or unsupported dtype '{dtypeName}' (supported: {string.Join(", ", DTypes.SafeTensorsNames)}).", name);
        long[] shape = ReadIntegers(path, name, value, "shape", -1);
        long[] offsets = ReadIntegers(path, name, value, "data_offsets", 2);
        long begin = offsets[0], end = offsets[1];
        if (begin > end)
            throw new WeightFileException(path, $"{Where()}: data_offsets [{begin}, {end}] begin after they end.", name);
        if (end > dataLength)
            throw new WeightFileException(path, $"{Where()}: data_offsets [{begin}, {end}] reach past the end of the data section ({dataLength} bytes): the file is truncated or the header is wrong.", name);
        long expected;
        try
        {
            expected = checked(shape.Aggregate(1L, (a, b) => checked(a * b)) * DTypes.ElementSize(dtype));
        }
        catch (OverflowException)
        {
            throw new WeightFileException(path, $"{Where()}: shape [{string.Join(", ", shape)}] is too large.", name);
        }
        if (expected != end - begin)
            throw new WeightFileException(path, $"{Where()}: shape [{string.Join(", ", shape)}] of {dtypeName} needs {expected} bytes but data_offsets [{begin}, {end}] hold {end - begin}.", name);
        return new Entry(name, dtype, shape, begin, end);
    }

    private static long[] ReadIntegers(string path, string name, JsonElement value, string field, int count)
    {
        if (!value.TryGetProperty(field, out var element) || element.ValueKind != JsonValueKind.Array)
            throw new WeightFileException(path, $"{path}: tensor '{name}': missing or non-array '{field}'.", name);
        var result = new List<long>();
        foreach (var item in element.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out long number) || number < 0)
                throw new WeightFileException(path, $"{path}: tensor '{name}': '{field}' must hold non-negative integers, found {item.GetRawText()}.", name);
            result.Add(number);
        }
        if (count >= 0 && result.Count != count)
            throw new WeightFileException(path, $"{path}: tensor '{name}': '{field}' must hold {count} integers, found {result.Count}.", name);
        return result.ToArray();
    }

    private static void CheckOverlaps(string path, List<Entry> entries)
    {
        Entry? previous = null;
        foreach (var entry in entries.Where(e => e.End > e.Begin).OrderBy(e => e.Begin))
        {
            if (previous is not null && entry.Begin < previous.End)
                throw new WeightFileException(path,
                    $"{path}: tensor '{entry.Name}': data_offsets [{entry.Begin}, {entry.End}] overlap those of '{previous.Name}' [{previous.Begin}, {previous.End}].",
                    entry.Name);
            previous = entry;
        }
    }
}
