using System.Globalization;
using System.Text.Json;
using Cnn.Backbones.Weights;

namespace Cnn.Cli.Commands;

/// <summary><c>cnn weights &lt;file&gt; [--json]</c>: lists every tensor of a <c>.pth</c> or <c>.safetensors</c> file and the parameter total.</summary>
public sealed class WeightsCommand : ICliCommand
{
    /// <inheritdoc />
    public string Name => "weights";

    /// <inheritdoc />
    public string Summary => "list the tensors of a .pth or .safetensors weight file (name, dtype, shape, count)";

    /// <inheritdoc />
    public IReadOnlyList<CliOption> Options { get; } = [CommonOptions.Json];

    /// <inheritdoc />
    public string? Positionals => "<file.pth|file.safetensors>";

    /// <inheritdoc />
    public int Run(CliArguments arguments, TextWriter stdout, TextWriter stderr)
    {
        bool json = arguments.Flag("--json");
        if (arguments.Positionals.Count != 1)
            throw new CliUsageException(arguments.Positionals.Count == 0 ? "missing the weight file" : "give exactly one weight file");
        string path = arguments.Positionals[0];

        var format = WeightFile.Detect(path);
        var tensors = WeightFile.Inspect(path);
        var counts = new Counts(tensors.Where(t => !t.IsBuffer).Sum(t => t.Numel), tensors.Where(t => t.IsBuffer).Sum(t => t.Numel));
        if (json)
            WriteJson(stdout, path, format, tensors, counts);
        else
            WriteTable(stdout, tensors, counts);
        return 0;
    }

    /// <summary>Numbers of the file's parameters and of its BatchNorm buffers (running statistics and counters).</summary>
    private sealed record Counts(long Parameters, long Buffers);

    private static void WriteTable(TextWriter stdout, IReadOnlyList<TensorInfo> tensors, Counts counts)
    {
        var rows = tensors.Select(t => (t.Name, t.DTypeName, t.ShapeText, Numel: t.Numel.ToString("N0", CultureInfo.InvariantCulture))).ToList();
        int nameWidth = Math.Max("name".Length, rows.Select(r => r.Name.Length).DefaultIfEmpty(0).Max());
        int dtypeWidth = Math.Max("dtype".Length, rows.Select(r => r.DTypeName.Length).DefaultIfEmpty(0).Max());
        int shapeWidth = Math.Max("shape".Length, rows.Select(r => r.ShapeText.Length).DefaultIfEmpty(0).Max());
        int numelWidth = Math.Max("numel".Length, rows.Select(r => r.Numel.Length).DefaultIfEmpty(0).Max());
        stdout.WriteLine($"{"name".PadRight(nameWidth)}  {"dtype".PadRight(dtypeWidth)}  {"shape".PadRight(shapeWidth)}  {"numel".PadLeft(numelWidth)}");
        foreach (var row in rows)
            stdout.WriteLine($"{row.Name.PadRight(nameWidth)}  {row.DTypeName.PadRight(dtypeWidth)}  {row.ShapeText.PadRight(shapeWidth)}  {row.Numel.PadLeft(numelWidth)}");
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{tensors.Count:N0} tensors, {counts.Parameters:N0} parameters, {counts.Buffers:N0} buffers (BatchNorm running statistics and counters)"));
    }

    private static void WriteJson(TextWriter stdout, string path, WeightFile.Format format, IReadOnlyList<TensorInfo> tensors, Counts counts)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("file", path);
            json.WriteString("format", format switch { WeightFile.Format.SafeTensors => "safetensors", WeightFile.Format.Onnx => "onnx", _ => "pytorch" });
            json.WriteNumber("tensor_count", tensors.Count);
            json.WriteNumber("parameters", counts.Parameters);
            json.WriteNumber("buffers", counts.Buffers);
            json.WriteStartArray("tensors");
            foreach (var tensor in tensors)
            {
                json.WriteStartObject();
                json.WriteString("name", tensor.Name);
                json.WriteString("dtype", tensor.DTypeName);
                json.WriteStartArray("shape");
                foreach (long d in tensor.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteNumber("numel", tensor.Numel);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        stdout.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
    }
}
