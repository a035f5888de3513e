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

    /// <summary><paramref name="input"/> with the columns of <paramref name="added"/> appended, replacing same-named ones.</summary>
    public static SchemaShape Append(SchemaShape input, DataViewSchema added)
    {
        var addedShape = FromSchema(added);
        var names = addedShape.Select(c => c.Name).ToHashSet();
        return new SchemaShape(input.Where(c => !names.Contains(c.Name)).Concat(addedShape));
    }
}
