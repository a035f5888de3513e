using System.Globalization;
using System.Text.Json;
using Cnn.Backbones.Models;
using Cnn.Backbones.Weights;
using Cnn.Backbones.Weights.Catalog;
using Cnn.Backbones.Weights.Download;

namespace Cnn.Cli.Commands;

/// <summary>
/// <c>cnn weights</c>: <c>list [model]</c> shows the pretrained weights by name (accuracy, parameters, preprocessing, cached or
/// not), <c>download &lt;model|name&gt;...</c> fetches them into the cache ahead of time, and <c>&lt;file&gt;</c> lists every tensor of a
/// <c>.pth</c> or <c>.safetensors</c> file and the parameter total.
/// </summary>
public sealed class WeightsCommand : ICliCommand
{
    /// <inheritdoc />
    public string Name => "weights";

    /// <inheritdoc />
    public string Summary => "pretrained weights by name (list, download), or the tensors of a .pth/.safetensors file";

    /// <inheritdoc />
    public IReadOnlyList<CliOption> Options { get; } = [CommonOptions.Json];

    /// <inheritdoc />
    public string? Positionals => "list [model] | download <model|model.NAME|hf-hub:org/name>... | <file.pth|file.safetensors>";

    /// <inheritdoc />
    public string Details =>
        "  list [model]: every weights entry (of one model), as --weights and ModelOptions.Weights name them, with ImageNet\n" +
        "    acc@1/acc@5, parameters, the evaluation preprocessing and whether the file is already in the cache\n" +
        "  download: a model's DEFAULT weights, 'model.NAME' (resnet50.IMAGENET1K_V2, resnet50.tv2_in1k) or an hf-hub: name, into\n" +
        "    $TORCH_HOME/hub/checkpoints (torchvision's files) or the Hugging Face hub cache; CNN_HOME overrides both, CNN_OFFLINE=1\n" +
        "    never downloads, CNN_WEIGHTS_MIRROR and HF_ENDPOINT name mirrors";

    /// <inheritdoc />
    public int Run(CliArguments arguments, TextWriter stdout, TextWriter stderr)
    {
        bool json = arguments.Flag("--json");
        var positionals = arguments.Positionals;
        if (positionals.Count == 0)
            throw new CliUsageException("give 'list [model]', 'download <model|name>...' or a weight file");
        switch (positionals[0])
        {
            case "list" when !File.Exists("list"):
                if (positionals.Count > 2) throw new CliUsageException("'weights list' takes at most one model name");
                return List(positionals.Count == 2 ? CliApp.RequireModel(positionals[1]) : null, json, stdout);
            case "download" when !File.Exists("download"):
                if (positionals.Count == 1) throw new CliUsageException("'weights download' needs a model, 'model.NAME' or an hf-hub: name");
                return Download(positionals.Skip(1).ToArray(), stdout, stderr);
        }
        if (positionals.Count != 1)
            throw new CliUsageException("give exactly one weight file");
        string path = positionals[0];

        var format = WeightFile.Detect(path);
        var tensors = WeightFile.Inspect(path);
        var counts = new Counts(tensors.Where(t => !t.IsBuffer).Sum(t => t.Numel), tensors.Where(t => t.IsBuffer).Sum(t => t.Numel));
        if (json)
            WriteJson(stdout, path, format, tensors, counts);
        else
            WriteTable(stdout, tensors, counts);
        return 0;
    }

    private static int List(string? model, bool json, TextWriter stdout)
    {
        var entries = WeightsCatalog.All.Where(e => model is null || e.Model.Name == model).ToArray();
        if (model is not null && entries.Length == 0)
        {
            stdout.WriteLine($"{model} has no published torchvision weights; give a weights file or an hf-hub: name with --weights.");
            return 0;
        }
        using var store = new WeightStore();
        var rows = entries.Select(e => new ListRow(e, e.Model.DefaultWeights == e.Entry.Name, store.IsCached(new Uri(e.Entry.Url)), store.CachePathOf(new Uri(e.Entry.Url)))).ToArray();
        if (json) WriteListJson(stdout, rows);
        else WriteListTable(stdout, rows);
        return 0;
    }

    private sealed record ListRow(CatalogEntry Entry, bool IsDefault, bool Cached, string CachePath);

    private static void WriteListTable(TextWriter stdout, IReadOnlyList<ListRow> rows)
    {
        var cells = rows.Select(r =>
        {
            var (entry, meta, config) = (r.Entry.Entry, r.Entry.Entry.Metadata, r.Entry.Entry.Config);
            return new[]
            {
                r.Entry.Model.Name, entry.Name + (r.IsDefault ? " (DEFAULT)" : ""), meta.TimmTag is { } tag ? $"{r.Entry.Model.Name}.{tag}" : "",
                Percent(meta.Acc1), Percent(meta.Acc5), meta.ParameterCount.ToString("N0", CultureInfo.InvariantCulture),
                string.Create(CultureInfo.InvariantCulture, $"{config.InputSize.Height}px crop {config.CropPct:0.###} {config.Interpolation}"),
                meta.FileSizeMegabytes is { } size ? size.ToString("0.0", CultureInfo.InvariantCulture) : "-",
                r.Cached ? "yes" : "no" + (meta.License is null ? "" : ", non-commercial licence"),
            };
        }).ToList();
        string[] header = ["model", "weights", "timm name", "acc@1", "acc@5", "params", "preprocessing", "MB", "cached"];
        var widths = header.Select((h, i) => Math.Max(h.Length, cells.Select(c => c[i].Length).DefaultIfEmpty(0).Max())).ToArray();
        stdout.WriteLine(string.Join("  ", header.Select((h, i) => h.PadRight(widths[i]))).TrimEnd());
        foreach (var row in cells)
            stdout.WriteLine(string.Join("  ", row.Select((c, i) => i is 3 or 4 or 5 or 7 ? c.PadLeft(widths[i]) : c.PadRight(widths[i]))).TrimEnd());
        stdout.WriteLine($"{rows.Count} weights entries; give one to --weights (or ModelOptions.Weights) by its name, e.g. --weights {rows.FirstOrDefault()?.Entry.Entry.Name ?? "DEFAULT"}.");
    }

    private static string Percent(double value) => double.IsNaN(value) ? "-" : value.ToString("0.000", CultureInfo.InvariantCulture);

    private static void WriteListJson(TextWriter stdout, IReadOnlyList<ListRow> rows)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartArray();
            foreach (var row in rows)
            {
                var (entry, meta, config) = (row.Entry.Entry, row.Entry.Entry.Metadata, row.Entry.Entry.Config);
                json.WriteStartObject();
                json.WriteString("model", row.Entry.Model.Name);
                json.WriteString("name", entry.Name);
                json.WriteBoolean("default", row.IsDefault);
                if (meta.TimmTag is { } tag) json.WriteString("timm_name", $"{row.Entry.Model.Name}.{tag}"); else json.WriteNull("timm_name");
                json.WriteString("url", entry.Url);
                json.WriteString("sha256_prefix", entry.Sha256Prefix);
                json.WriteNumber("num_params", meta.ParameterCount);
                if (double.IsNaN(meta.Acc1)) json.WriteNull("acc1"); else json.WriteNumber("acc1", meta.Acc1);
                if (double.IsNaN(meta.Acc5)) json.WriteNull("acc5"); else json.WriteNumber("acc5", meta.Acc5);
                json.WriteNumber("input_size", config.InputSize.Height);
                json.WriteNumber("crop_pct", config.CropPct);
                json.WriteString("interpolation", config.Interpolation);
                json.WriteNumber("num_classes", config.NumClasses);
                json.WriteString("recipe", meta.Recipe);
                if (meta.FileSizeMegabytes is { } size) json.WriteNumber("file_size_mb", size); else json.WriteNull("file_size_mb");
                if (meta.License is { } license) json.WriteString("license", license); else json.WriteNull("license");
                json.WriteBoolean("cached", row.Cached);
                json.WriteString("cache_path", row.CachePath);
                json.WriteEndObject();
            }
            json.WriteEndArray();
        }
        stdout.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
    }

    private static int Download(IReadOnlyList<string> names, TextWriter stdout, TextWriter stderr)
    {
        // Every name is checked before anything is downloaded.
        var requests = names.Select(Request).ToArray();
        foreach (var (model, weights) in requests)
        {
            if (model is null)
            {
                using var store = new WeightStore();
                var snapshot = store.GetHubFilesAsync(HubModelId.Parse(weights)).GetAwaiter().GetResult();
                stdout.WriteLine($"{snapshot.Id}: {snapshot.WeightsPath}");
                continue;
            }
            var resolved = PretrainedWeights.Resolve(model, weights);
            stdout.WriteLine($"{resolved.Description}: {resolved.Path}");
            if (resolved.License is { } license) stderr.WriteLine($"cnn weights: note: {resolved.Description} is licensed for non-commercial use only ({license}).");
        }
        return 0;
    }

    /// <summary>A model's DEFAULT, <c>model.NAME</c>, or an <c>hf-hub:</c> name (no model: the hub repository as it is).</summary>
    private static (string? Model, string Weights) Request(string name)
    {
        if (HubModelId.IsHubName(name))
        {
            try
            {
                HubModelId.Parse(name);
            }
            catch (FormatException ex)
            {
                throw new CliUsageException(ex.Message);
            }
            return (null, name);
        }
        if (ModelRegistry.Exists(name)) return (ModelRegistry.Get(name).Name, WeightsEntry.DefaultAlias);
        int dot = name.IndexOf('.', StringComparison.Ordinal);
        if (dot > 0 && ModelRegistry.Exists(name[..dot]))
        {
            string model = ModelRegistry.Get(name[..dot]).Name;
            try
            {
                WeightsCatalog.Find(model, name);
            }
            catch (ArgumentException ex)
            {
                throw new CliUsageException(ex.Message);
            }
            return (model, name);
        }
        return (CliApp.RequireModel(dot > 0 ? name[..dot] : name), WeightsEntry.DefaultAlias); // an unknown model: a usage error naming close matches
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
