using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Cnn.MLNet.Mapping;

/// <summary>
/// Helpers for <see cref="SchemaShape"/>, whose factory and column constructor are internal in Microsoft.ML 5: the added
/// columns are described as a real <see cref="DataViewSchema"/> and converted with ML.NET's own (non-public) conversion.
/// </summary>
internal static class SchemaShapes
{
    private static readonly Lazy<Func<DataViewSchema, SchemaShape>> Convert = new(() =>
    {
        var method = typeof(SchemaShape).GetMethod("Create", BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic, new[] { typeof(DataViewSchema) })
            ?? throw new MissingMethodException("This Microsoft.ML version has no SchemaShape.Create(DataViewSchema); Cnn.MLNet was built against Microsoft.ML 5.0.");
        return method.CreateDelegate<Func<DataViewSchema, SchemaShape>>();
    });

    /// <summary>The shape of a schema, as ML.NET's estimators describe their inputs and outputs.</summary>
    public static SchemaShape FromSchema(DataViewSchema schema) => Convert.Value(schema);

    /// <summary>The visible column named <paramref name="name"/> (the last one, as in a schema), or null.</summary>
    public static SchemaShape.Column? Find(SchemaShape shape, string name)
    {
        SchemaShape.Column? found = null;
        foreach (var column in shape)
            if (column.Name == name) found = column;
        return found;
    }

    /// <summary>
    /// Checks that <paramref name="name"/> is an image column (LoadImages output, encoded bytes or a text column of paths);
    /// otherwise throws <see cref="ArgumentOutOfRangeException"/> saying how to provide one.
    /// </summary>
    public static void RequireImageColumn(SchemaShape shape, string name)
    {
        if (Find(shape, name) is not { } image)
            throw new ArgumentOutOfRangeException(nameof(name),
                $"Input column '{name}' is missing. Load images first, e.g. mlContext.Transforms.LoadImages(\"{name}\", imageFolder, \"ImagePath\") " +
                "or LoadRawImageBytes, or set the image column name in the options.");
        bool scalar = image.Kind == SchemaShape.Column.VectorKind.Scalar;
        bool isImage = scalar && image.ItemType is Microsoft.ML.Transforms.Image.ImageDataViewType or Microsoft.ML.Data.TextDataViewType
            || !scalar && image.ItemType == Microsoft.ML.Data.NumberDataViewType.Byte;
        if (!isImage)
            throw new ArgumentOutOfRangeException(nameof(name),
                $"Column '{name}' ({image.Kind} of {image.ItemType}) is not an image: expected LoadImages output, LoadRawImageBytes output or a text column of file paths.");
    }

    /// <summary>
    /// Checks that <paramref name="label"/> is a scalar key column (as <c>MapValueToKey</c> makes), otherwise throws
    /// <see cref="ArgumentOutOfRangeException"/> ending with <paramref name="howToFix"/>; returns whether it has text key values.
    /// </summary>
    public static bool RequireKeyLabel(SchemaShape.Column label, string needs, string howToFix)
    {
        if (!label.IsKey || label.Kind != SchemaShape.Column.VectorKind.Scalar || label.ItemType != NumberDataViewType.UInt32)
            throw new ArgumentOutOfRangeException(nameof(label),
                $"Label column '{label.Name}' is {label.Kind} of {label.ItemType}{(label.IsKey ? " key" : "")}; {needs}. {howToFix}");
        return Find(label.Annotations, "KeyValues") is { ItemType: TextDataViewType };
    }

    /// <summary><paramref name="input"/> with the columns of <paramref name="added"/> appended, replacing same-named ones.</summary>
    public static SchemaShape Append(SchemaShape input, DataViewSchema added)
    {
        var addedShape = FromSchema(added);
        var names = addedShape.Select(c => c.Name).ToHashSet();
        return new SchemaShape(input.Where(c => !names.Contains(c.Name)).Concat(addedShape));
    }

    /// <summary>
    /// <paramref name="input"/> plus a classifier's outputs: <paramref name="scoreColumn"/> (vector of probabilities with slot
    /// names) and <paramref name="predictedLabelColumn"/> (a key, with text key values when <paramref name="withKeyValues"/>).
    /// </summary>
    public static SchemaShape AppendClassifierOutputs(SchemaShape input, string scoreColumn, string predictedLabelColumn, bool withKeyValues)
    {
        // Build the added columns as a schema and convert: SchemaShape columns cannot be constructed directly.
        var builder = new DataViewSchema.Builder();
        var scoreAnnotations = new DataViewSchema.Annotations.Builder();
        scoreAnnotations.Add("SlotNames", new VectorDataViewType(TextDataViewType.Instance, 2), (ref VBuffer<ReadOnlyMemory<char>> v) => { });
        builder.AddColumn(scoreColumn, new VectorDataViewType(NumberDataViewType.Single, 2), scoreAnnotations.ToAnnotations());
        DataViewSchema.Annotations? keyValues = null;
        if (withKeyValues)
        {
            var annotations = new DataViewSchema.Annotations.Builder();
            annotations.Add("KeyValues", new VectorDataViewType(TextDataViewType.Instance, 2), (ref VBuffer<ReadOnlyMemory<char>> v) => { });
            keyValues = annotations.ToAnnotations();
        }
        builder.AddColumn(predictedLabelColumn, new KeyDataViewType(typeof(uint), 2), keyValues);
        return Append(input, builder.ToSchema());
    }
}
