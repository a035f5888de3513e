using System.Globalization;
using Cnn.Backbones.Models;
using Cnn.Backbones.Onnx;
using Cnn.Backbones.Weights;

namespace Cnn.Cli.Commands;

/// <summary>
/// <c>cnn import &lt;model.onnx&gt; --model &lt;name&gt; [--output weights.safetensors]</c>: maps an ONNX model's weights onto a
/// registered architecture, verifies the mapping against ONNX Runtime, prints the mapping report and writes safetensors.
/// </summary>
public sealed class ImportCommand : ICliCommand
{
    /// <inheritdoc />
    public string Name => "import";

    /// <inheritdoc />
    public string Summary => "map an ONNX model's weights onto a registered architecture, verify with ONNX Runtime, write safetensors";

    /// <inheritdoc />
    public IReadOnlyList<CliOption> Options { get; } =
    [
        CommonOptions.Model("the registered architecture the ONNX model is"),
        CommonOptions.Output("the safetensors file to write (default: the ONNX file's name with .safetensors)"),
        new("--preprocess", "the graph that prepares 0-255 RGB pixels for the network (ML.NET's ResNetPreprocess.onnx)", "<prep.onnx>"),
        new("--tolerance", "largest relative difference accepted by the verification (default 1e-4)", "F"),
        new("--transform-input", "GoogLeNet / Inception v3: whether the graph has torchvision's transform_input", "true|false"),
    ];

    /// <inheritdoc />
    public string? Positionals => "<model.onnx>";

    /// <inheritdoc />
    public string Details =>
        "The layers are paired along the graph's data flow and checked by running the ONNX model (ONNX Runtime) and the architecture\n" +
        "with the mapped weights on the same random input; nothing is written unless every layer and the output agree within\n" +
        "--tolerance (relative to each output's largest value). --output defaults to the ONNX file's name with .safetensors.\n" +
        "--preprocess: the graph that prepares 0-255 RGB pixels for the network (ML.NET's ResNetPreprocess.onnx): its channel order is\n" +
        "folded into the first convolution and its mean/scale are printed and stored as the file's cnn.mean / cnn.std metadata.\n" +
        "Blocks per stage are read off the graph (ResNets); when they differ from the architecture's, build with those BlockCounts.\n" +
        "--transform-input: GoogLeNet / Inception v3 only; false for graphs exported without torchvision's transform_input.";

    /// <inheritdoc />
    public int Run(CliArguments arguments, TextWriter stdout, TextWriter stderr)
    {
        string model = CliApp.RequireModel(arguments.Required("--model"));
        string? output = arguments.String("--output");
        string? preprocess = arguments.String("--preprocess");
        double tolerance = arguments.Double("--tolerance", OnnxImporter.DefaultTolerance, min: 1e-12, max: 1) ?? OnnxImporter.DefaultTolerance;
        bool? transformInput = arguments.String("--transform-input") switch
        {
            null => null,
            "true" => true,
            "false" => false,
            var other => throw new CliUsageException($"--transform-input must be true or false, got '{other}'"),
        };
        if (arguments.Positionals.Count != 1)
            throw new CliUsageException(arguments.Positionals.Count == 0 ? "missing the .onnx file" : "give exactly one .onnx file");
        string path = arguments.Positionals[0];
        if (!File.Exists(path)) throw new FileNotFoundException($"ONNX file not found: {path}", path);
        if (preprocess is not null && !File.Exists(preprocess)) throw new FileNotFoundException($"--preprocess: ONNX file not found: {preprocess}", preprocess);
        output = OutputPath.Check(output ?? Path.ChangeExtension(path, ".safetensors"), "--output");

        var options = new ModelOptions { TransformInput = transformInput };
        using var result = preprocess is null
            ? OnnxImporter.Import(path, model, options, tolerance)
            : OnnxImporter.ImportWithPreprocessing(preprocess, path, model, options: options, tolerance: tolerance);
        var report = result.Report;
        WriteMapping(stdout, report);
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"verified: {report.LayersCompared} layers and the output agree with ONNX Runtime on a random {string.Join("x", report.InputShape)} input; " +
            $"output max |difference| {report.MaxAbsDifference:G3} of {report.MaxAbsReference:G3} (relative {report.RelativeDifference:G3}, tolerance {tolerance:G3})"));

        if (result.Options.BlockCounts is { } counts)
            stdout.WriteLine($"block counts: [{string.Join(", ", counts)}] (not {report.Architecture}'s own): build the model with ModelOptions.BlockCounts = [{string.Join(", ", counts)}]");
        if (result.PretrainedConfig is { } config)
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"preprocessing: RGB in [0, 1], mean [{string.Join(", ", config.Mean.Select(m => m.ToString("G6", CultureInfo.InvariantCulture)))}], " +
                $"std [{string.Join(", ", config.Std.Select(m => m.ToString("G6", CultureInfo.InvariantCulture)))}], input {config.InputSize.Height}x{config.InputSize.Width}; " +
                $"channel order folded into {config.FirstConv}; with both graphs in ONNX Runtime on a random image: relative difference " +
                $"{report.PreprocessedRelativeDifference:G3} with the exact mean, {report.PerChannelMeanRelativeDifference:G3} with this per-channel mean"));

        result.WriteSafeTensors(output, Path.GetFileName(path));
        stdout.WriteLine($"wrote {output} ({result.Weights.Count} tensors, {report.Architecture}, " +
                         (report.NumClasses == 0 ? "no classifier" : $"{report.NumClasses} classes") + "); use it with --weights");
        return 0;
    }

    private static void WriteMapping(TextWriter stdout, OnnxImportReport report)
    {
        var rows = report.Entries.Select(e => (
            Onnx: e.OnnxTensor is null ? "-" : $"{e.OnnxTensor} {Shape(e.OnnxShape!)}",
            Key: $"{e.StateDictKey} {Shape(e.Shape)}",
            e.Note)).ToList();
        int onnxWidth = Math.Max("onnx tensor".Length, rows.Max(r => r.Onnx.Length));
        int keyWidth = Math.Max("state-dict key".Length, rows.Max(r => r.Key.Length));
        stdout.WriteLine($"{"onnx tensor".PadRight(onnxWidth)}    {"state-dict key".PadRight(keyWidth)}  note");
        foreach (var row in rows)
            stdout.WriteLine($"{row.Onnx.PadRight(onnxWidth)} -> {row.Key.PadRight(keyWidth)}  {row.Note}".TrimEnd());
    }

    private static string Shape(IReadOnlyList<long> shape) => "[" + string.Join(", ", shape) + "]";
}
