using System.Reflection;
using Microsoft.ML;

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

    /// <summary><paramref name="input"/> with the columns of <paramref name="added"/> appended, replacing same-named ones.</summary>
    public static SchemaShape Append(SchemaShape input, DataViewSchema added)
    {
        var addedShape = FromSchema(added);
        var names = addedShape.Select(c => c.Name).ToHashSet();
        return new SchemaShape(input.Where(c => !names.Contains(c.Name)).Concat(addedShape));
    }
}
