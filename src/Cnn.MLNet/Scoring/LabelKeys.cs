using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Cnn.MLNet.Scoring;

/// <summary>
/// The label's key type and its key values (class names), kept so that <c>PredictedLabel</c> has the label's exact key type
/// and <c>MapKeyToValue</c> and the evaluators work on the output. Text and numeric key values are supported.
/// </summary>
internal sealed class LabelKeys
{
    private LabelKeys(int count, string? valueType, string[]? values)
    {
        Count = count;
        ValueType = valueType;
        Values = values;
    }

    /// <summary>Number of classes (the key's cardinality).</summary>
    public int Count { get; }

    /// <summary>Type of the key values (<c>Text</c>, <c>Single</c>, <c>Double</c>, <c>Int32</c>, <c>Int64</c>, <c>UInt32</c>, <c>Boolean</c>) or null when the key has none.</summary>
    public string? ValueType { get; }

    /// <summary>Key values as invariant strings, or null.</summary>
    public string[]? Values { get; }

    /// <summary>The key type of the label and predicted label columns.</summary>
    public KeyDataViewType KeyType => new(typeof(uint), Count);

    /// <summary>Class names for display: the key values, or "0", "1", … .</summary>
    public IReadOnlyList<string> Names => Values ?? Enumerable.Range(0, Count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();

    /// <summary>Keys for <paramref name="count"/> classes named by <paramref name="names"/> (text key values), or without key values when null.</summary>
    public static LabelKeys FromNames(int count, IReadOnlyList<string>? names)
    {
        if (count < 2) throw new ArgumentOutOfRangeException(nameof(count), count, $"A classifier needs at least 2 classes; got {count}.");
        if (names is not null && names.Count != count)
            throw new ArgumentException($"{names.Count} class names were given for {count} classes.", nameof(names));
        return new LabelKeys(count, names is null ? null : "Text", names?.ToArray());
    }

    /// <summary>Reads the key cardinality and values of a label column; a clear error when it is not a key column.</summary>
    public static LabelKeys FromColumn(DataViewSchema.Column label)
    {
        if (label.Type is not KeyDataViewType key || key.RawType != typeof(uint))
            throw new ArgumentOutOfRangeException(nameof(label),
                $"Label column '{label.Name}' has type {label.Type}; the CNN trainer needs a key column (UInt32 key). " +
                $"Add mlContext.Transforms.Conversion.MapValueToKey(\"{label.Name}\") before the trainer.");
        if (key.Count < 2 || key.Count > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(label), $"Label column '{label.Name}' has {key.Count} classes; classification needs at least 2.");
        var annotation = label.Annotations.Schema.GetColumnOrNull("KeyValues");
        if (annotation is not { Type: VectorDataViewType vector })
            return new LabelKeys((int)key.Count, null, null);
        string? type = null;
        string[]? values = null;
        void Read<T>(string name, Func<T, string> format)
        {
            VBuffer<T> buffer = default;
            label.Annotations.GetValue("KeyValues", ref buffer);
            type = name;
            values = buffer.DenseValues().Select(format).ToArray();
        }
        var item = vector.ItemType;
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        if (item is TextDataViewType) Read<ReadOnlyMemory<char>>("Text", v => v.ToString());
        else if (item == NumberDataViewType.Single) Read<float>("Single", v => v.ToString("R", invariant));
        else if (item == NumberDataViewType.Double) Read<double>("Double", v => v.ToString("R", invariant));
        else if (item == NumberDataViewType.Int32) Read<int>("Int32", v => v.ToString(invariant));
        else if (item == NumberDataViewType.Int64) Read<long>("Int64", v => v.ToString(invariant));
        else if (item == NumberDataViewType.UInt32) Read<uint>("UInt32", v => v.ToString(invariant));
        else if (item == BooleanDataViewType.Instance) Read<bool>("Boolean", v => v ? "true" : "false");
        return new LabelKeys((int)key.Count, type, values);
    }

    /// <summary>Key values annotation for a key column (none when the label had none).</summary>
    public DataViewSchema.Annotations? KeyValuesAnnotation()
    {
        if (Values is null) return null;
        var builder = new DataViewSchema.Annotations.Builder();
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        void Add<T>(PrimitiveDataViewType itemType, Func<string, T> parse)
        {
            var buffer = new VBuffer<T>(Values.Length, Values.Select(parse).ToArray());
            builder.Add("KeyValues", new VectorDataViewType(itemType, Values.Length), (ref VBuffer<T> value) => buffer.CopyTo(ref value));
        }
        switch (ValueType)
        {
            case "Text": Add(TextDataViewType.Instance, v => v.AsMemory()); break;
            case "Single": Add(NumberDataViewType.Single, v => float.Parse(v, invariant)); break;
            case "Double": Add(NumberDataViewType.Double, v => double.Parse(v, invariant)); break;
            case "Int32": Add(NumberDataViewType.Int32, v => int.Parse(v, invariant)); break;
            case "Int64": Add(NumberDataViewType.Int64, v => long.Parse(v, invariant)); break;
            case "UInt32": Add(NumberDataViewType.UInt32, v => uint.Parse(v, invariant)); break;
            case "Boolean": Add(BooleanDataViewType.Instance, v => v == "true"); break;
            default: return null;
        }
        return builder.ToAnnotations();
    }

    /// <summary>Slot names for the score vector: the class names as text.</summary>
    public DataViewSchema.Annotations ScoreAnnotations()
    {
        var builder = new DataViewSchema.Annotations.Builder();
        var names = new VBuffer<ReadOnlyMemory<char>>(Count, Names.Select(n => n.AsMemory()).ToArray());
        builder.Add("SlotNames", new VectorDataViewType(TextDataViewType.Instance, Count), (ref VBuffer<ReadOnlyMemory<char>> value) => names.CopyTo(ref value));
        builder.Add("ScoreColumnKind", TextDataViewType.Instance, (ref ReadOnlyMemory<char> value) => value = "MulticlassClassification".AsMemory());
        builder.Add("ScoreValueKind", TextDataViewType.Instance, (ref ReadOnlyMemory<char> value) => value = "Score".AsMemory());
        return builder.ToAnnotations();
    }

    public string ToJson() => JsonSerializer.Serialize(new Stored(Count, ValueType, Values));

    public static LabelKeys FromJson(string json)
    {
        var stored = JsonSerializer.Deserialize<Stored>(json) ?? throw new InvalidDataException("Model file: empty label description.");
        if (stored.Count < 2) throw new InvalidDataException($"Model file: label count {stored.Count} is invalid.");
        return new LabelKeys(stored.Count, stored.ValueType, stored.Values);
    }

    private sealed record Stored(int Count, string? ValueType, string[]? Values);
}
