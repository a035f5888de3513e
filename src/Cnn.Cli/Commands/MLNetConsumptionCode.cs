using System.Globalization;
using System.Text;
using Cnn.MLNet.Export;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Cnn.Cli.Commands;

/// <summary>
/// The consumption code written beside a plain ML.NET model (as Model Builder's <c>consumption.cs</c>): <c>ModelInput</c> and
/// <c>ModelOutput</c> classes from the model's input schema and the columns it adds, and a short <c>Predict</c> method.
/// </summary>
internal static class MLNetConsumptionCode
{
    /// <summary>The code file beside <paramref name="modelPath"/>: <c>plain.zip</c> → <c>plain.consumption.cs</c>.</summary>
    public static string PathFor(string modelPath)
    {
        string name = Path.GetFileName(modelPath);
        foreach (var suffix in new[] { ".mlnet.zip", ".zip" })
            if (name.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)) { name = name[..^suffix.Length]; break; }
        return Path.Combine(Path.GetDirectoryName(Path.GetFullPath(modelPath))!, name + ".consumption.cs");
    }

    /// <summary>The C# source: the two classes and the prediction code for the model file named <paramref name="modelFileName"/>.</summary>
    public static string Write(MLNetPipeline plain, string modelFileName)
    {
        var output = plain.Model.GetOutputSchema(plain.InputSchema);
        var inputs = plain.InputSchema.Where(c => !c.IsHidden).ToList();
        var added = output.Where(c => !c.IsHidden && plain.InputSchema.GetColumnOrNull(c.Name) is null).ToList();
        string predicted = added.Where(c => c.Type is TextDataViewType).Select(c => c.Name).FirstOrDefault() ?? plain.PredictedLabelColumn;
        bool image = plain.ImageInput == MLNetImageInput.Image;
        var code = new StringBuilder();
        code.AppendLine("// Consumption code for " + modelFileName + ", written by 'cnn export --format mlnet'.");
        code.AppendLine("// Packages: Microsoft.ML, Microsoft.ML.ImageAnalytics, Microsoft.ML.OnnxTransformer (no TorchSharp, no Cnn.MLNet).");
        code.AppendLine("using Microsoft.ML;");
        code.AppendLine("using Microsoft.ML.Data;");
        code.AppendLine("using Microsoft.ML.Transforms.Image;");
        code.AppendLine();
        code.AppendLine("public sealed class ModelInput");
        code.AppendLine("{");
        foreach (var column in inputs) Property(code, column, isInput: true, plain.ResizedSize);
        code.AppendLine("}");
        code.AppendLine();
        code.AppendLine("public sealed class ModelOutput");
        code.AppendLine("{");
        foreach (var column in added) Property(code, column, isInput: false, plain.ResizedSize);
        code.AppendLine("}");
        code.AppendLine();
        code.AppendLine("public static class ModelConsumption");
        code.AppendLine("{");
        code.AppendLine($"    private static readonly Lazy<PredictionEngine<ModelInput, ModelOutput>> Engine = new(() =>");
        code.AppendLine("    {");
        code.AppendLine("        var mlContext = new MLContext();");
        code.AppendLine($"        var model = mlContext.Model.Load(Path.Combine(AppContext.BaseDirectory, \"{modelFileName}\"), out _);");
        code.AppendLine("        return mlContext.Model.CreatePredictionEngine<ModelInput, ModelOutput>(model);");
        code.AppendLine("    });");
        code.AppendLine();
        code.AppendLine("    /// <summary>Predicts one image (a PredictionEngine is not thread-safe: use one per thread, or a pool in a server).</summary>");
        if (image)
        {
            code.AppendLine("    public static ModelOutput Predict(string imagePath)");
            code.AppendLine("    {");
            code.AppendLine("        using var image = MLImage.CreateFromFile(imagePath);");
            code.AppendLine($"        return Engine.Value.Predict(new ModelInput {{ {Identifier(plain.ImageColumn)} = image }});");
        }
        else
        {
            code.AppendLine("    public static ModelOutput Predict(string imagePath)");
            code.AppendLine("    {");
            code.AppendLine($"        return Engine.Value.Predict(new ModelInput {{ {Identifier(plain.ImageColumn)} = imagePath }});");
        }
        code.AppendLine("    }");
        code.AppendLine("}");
        code.AppendLine();
        code.AppendLine("// var output = ModelConsumption.Predict(\"image.png\");");
        code.AppendLine($"// Console.WriteLine($\"{{output.{Identifier(predicted)}}}: {{output.{Identifier(plain.ScoreColumn)}.Max():P1}}\");");
        return code.ToString();
    }

    /// <summary>A column type in words for the CLI's report.</summary>
    public static string Describe(DataViewType type) => type switch
    {
        ImageDataViewType => "image: MLImage",
        TextDataViewType => "text",
        _ => type.ToString() ?? type.RawType.Name,
    };

    private static void Property(StringBuilder code, DataViewSchema.Column column, bool isInput, int imageSize)
    {
        string size = imageSize.ToString(CultureInfo.InvariantCulture);
        string name = Identifier(column.Name);
        var (csType, attribute, initializer) = column.Type switch
        {
            ImageDataViewType => ("MLImage", $"[ImageType({size}, {size})]", " = null!;"),
            TextDataViewType => ("string", "", " = \"\";"),
            KeyDataViewType => ("uint", "", ""),
            VectorDataViewType vector => (Scalar(vector.ItemType) + "[]",
                vector.IsKnownSize ? $"[VectorType({vector.Size.ToString(CultureInfo.InvariantCulture)})]" : "[VectorType]", " = [];"),
            var other => (Scalar(other), "", ""),
        };
        if (column.Type is ImageDataViewType)
            code.AppendLine("    // ML.NET needs a size in ImageType; images of any size are resized by the model.");
        if (column.Type is KeyDataViewType)
            code.AppendLine(isInput ? "    // A key: the index + 1 of the value (0: missing)." : "    // A key: class index + 1 (the key values are the class names).");
        code.AppendLine($"    [ColumnName(\"{column.Name.Replace("\"", "\\\"", StringComparison.Ordinal)}\")]{attribute}");
        code.AppendLine($"    public {csType} {name} {{ get; set; }}{initializer}");
    }

    private static string Scalar(DataViewType type) => type.RawType switch
    {
        var t when t == typeof(float) => "float",
        var t when t == typeof(double) => "double",
        var t when t == typeof(bool) => "bool",
        var t when t == typeof(int) => "int",
        var t when t == typeof(long) => "long",
        var t when t == typeof(uint) => "uint",
        var t when t == typeof(ReadOnlyMemory<char>) => "string",
        var t => t.Name,
    };

    private static string Identifier(string column)
    {
        var id = new StringBuilder();
        foreach (char c in column) id.Append(char.IsLetterOrDigit(c) || c == '_' ? c : '_');
        if (id.Length == 0 || char.IsDigit(id[0])) id.Insert(0, '_');
        return id.ToString();
    }
}
