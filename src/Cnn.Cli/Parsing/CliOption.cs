namespace Cnn.Cli;

/// <summary>One option of a verb, as the parser, the usage line and the help text show it.</summary>
/// <param name="Name">The long name, e.g. <c>--epochs</c>.</param>
/// <param name="Description">One line for the help text (the default included where there is one).</param>
/// <param name="ValueName">The value's placeholder, e.g. <c>N</c> or <c>&lt;file&gt;</c>; null for a flag, which takes no value.</param>
/// <param name="Alias">A short form, e.g. <c>-m</c>, or null.</param>
public sealed record CliOption(string Name, string Description, string? ValueName = null, string? Alias = null)
{
    /// <summary>Whether the option is a flag (takes no value).</summary>
    public bool IsFlag => ValueName is null;

    /// <summary>
    /// The typed System.CommandLine option, for an option an options class declares (<see cref="DeclaredOption"/>); null for a
    /// verb's own option, which the parser reads as a string (or a flag).
    /// </summary>
    public System.CommandLine.Option? Symbol { get; init; }

    /// <summary>The option as the usage line shows it, e.g. <c>[-m|--model &lt;name&gt;]</c>.</summary>
    public string UsageText => $"[{(Alias is null ? "" : Alias + "|")}{Name}{(IsFlag ? "" : " " + ValueName)}]";

    /// <summary>The option as the help text's first column shows it, e.g. <c>-m, --model &lt;name&gt;</c>.</summary>
    public string HelpText => $"{(Alias is null ? "    " : Alias + ", ")}{Name}{(IsFlag ? "" : " " + ValueName)}";
}

/// <summary>The options several verbs share, declared once.</summary>
public static class CommonOptions
{
    /// <summary><c>--json</c>: machine-readable output.</summary>
    public static CliOption Json { get; } = new("--json", "print JSON instead of a table");

    /// <summary><c>--csv</c>: comma-separated output.</summary>
    public static CliOption Csv { get; } = new("--csv", "print CSV (a header, then one row per image) instead of a table");

    /// <summary><c>--image-size</c> of inference: the square size images are resized and cropped to.</summary>
    public static CliOption InferenceImageSize { get; } = new("--image-size", "with --model: square input size images are resized and cropped to (default: the model's configuration, e.g. 224)", "N");

    /// <summary><c>-m, --model</c>: a registered architecture.</summary>
    public static CliOption Model(string description = "registered architecture (see 'cnn models')") => new("--model", description, "<name>", "-m");

    /// <summary>What <c>--weights</c> accepts, for its descriptions.</summary>
    public const string WeightsForms = "DEFAULT, a name such as IMAGENET1K_V2 or resnet50.tv2_in1k ('cnn weights list <model>'), hf-hub:<org>/<name>, or a .pth/.safetensors file";

    /// <summary><c>-w, --weights</c>: pretrained weights by name or a weight file.</summary>
    public static CliOption Weights(string description = "weights to load: " + WeightsForms) => new("--weights", description, "<name|file>", "-w");

    /// <summary><c>--pretrained</c>: the model's default pretrained weights (<c>--weights DEFAULT</c>).</summary>
    public static CliOption Pretrained { get; } = new("--pretrained", "start from the model's DEFAULT pretrained weights, as torchvision's weights=\"DEFAULT\" (downloaded once, hash-checked, then cached); same as --weights DEFAULT");

    /// <summary>
    /// The weights a verb was asked for: <c>--weights</c>, or <c>DEFAULT</c> with <c>--pretrained</c>; null for neither.
    /// </summary>
    /// <exception cref="CliUsageException">Both were given.</exception>
    public static string? WeightsOf(CliArguments arguments)
    {
        string? weights = arguments.String("--weights");
        if (!arguments.Flag("--pretrained")) return weights;
        if (weights is not null) throw new CliUsageException("give --weights <name|file> or --pretrained (= --weights DEFAULT), not both");
        return Cnn.Backbones.Weights.Catalog.WeightsEntry.DefaultAlias;
    }

    /// <summary><c>-b, --batch-size</c>.</summary>
    public static CliOption BatchSize(string description) => new("--batch-size", description, "N", "-b");

    /// <summary><c>-o, --output</c>: where the result is written.</summary>
    public static CliOption Output(string description) => new("--output", description, "<file>", "-o");

    /// <summary><c>--model-file</c>: a pipeline saved by <c>cnn train</c>.</summary>
    public static CliOption ModelFile(string description = "a model saved by 'cnn train' or 'cnn distill'") => new("--model-file", description, "<model.zip>");

    /// <summary><c>--crop-pct</c>.</summary>
    public static CliOption CropPct { get; } = new("--crop-pct", "centre-crop fraction (default: the model's configuration)", "F");

    /// <summary><c>--limit</c>.</summary>
    public static CliOption Limit { get; } = new("--limit", "use at most N images of each source split, class-balanced (smoke runs)", "N");
}

/// <summary>
/// <c>--precision</c>, <c>--memory-format</c> and <c>--engine</c>: how a network computes, on every verb that runs one. The
/// training verbs (train, distill) compute as auto picks (bfloat16 and channels-last where they measured faster), the inference
/// verbs (predict, eval, features) in float32 contiguous, the arithmetic and layout every parity test checks, with the engine
/// auto picks (the faster of TorchSharp and ONNX Runtime, measured on the first batch of at least 8 images; both float32).
/// </summary>
public static class ComputeOptions
{
    /// <summary>The compute options of predict, eval and features (float32 contiguous by default), as the training options declare them.</summary>
    public static IReadOnlyList<CliOption> InferenceOptions { get; } =
    [
        Describe(PrecisionOption, "float32, or what the model file stores"),
        Describe(MemoryFormatOption, "contiguous, or what the model file stores"),
        Describe(EngineOption, "auto, or what the model file stores"),
    ];

    private static DeclaredOption PrecisionOption => DeclaredOption.Named(typeof(Cnn.MLNet.CnnFitOptions), "--precision");

    private static DeclaredOption MemoryFormatOption => DeclaredOption.Named(typeof(Cnn.MLNet.CnnFitOptions), "--memory-format");

    private static DeclaredOption EngineOption => DeclaredOption.Named(typeof(Cnn.MLNet.CnnFitOptions), "--engine");

    private static CliOption Describe(DeclaredOption option, string fallback) =>
        new(option.Declaration.Name, $"{option.Declaration.HelpText} (default {fallback})", option.ValueName, option.Declaration.Alias);

    /// <summary>The parsed <c>--precision</c>; without it float32.</summary>
    public static Cnn.MLNet.CnnPrecision Precision(CliArguments arguments) =>
        arguments.String("--precision") is { } text ? (Cnn.MLNet.CnnPrecision)PrecisionOption.Parse(text) : Cnn.MLNet.CnnPrecision.Float32;

    /// <summary>The parsed <c>--engine</c>; without it Auto.</summary>
    public static Cnn.MLNet.CnnInferenceEngine Engine(CliArguments arguments) =>
        arguments.String("--engine") is { } text ? (Cnn.MLNet.CnnInferenceEngine)EngineOption.Parse(text) : Cnn.MLNet.CnnInferenceEngine.Auto;

    /// <summary>The parsed <c>--memory-format</c>; without it contiguous.</summary>
    public static Cnn.MLNet.CnnMemoryFormat MemoryFormat(CliArguments arguments) =>
        arguments.String("--memory-format") is { } text ? (Cnn.MLNet.CnnMemoryFormat)MemoryFormatOption.Parse(text) : Cnn.MLNet.CnnMemoryFormat.Contiguous;

    /// <summary>Parses an inference verb's compute options and checks they go together, before any work starts.</summary>
    /// <exception cref="CliUsageException">A value is unknown, or ONNX Runtime is asked for with a reduced precision.</exception>
    public static void Check(CliArguments arguments)
    {
        var precision = Precision(arguments);
        MemoryFormat(arguments);
        if (Engine(arguments) == Cnn.MLNet.CnnInferenceEngine.OnnxRuntime && precision is not (Cnn.MLNet.CnnPrecision.Float32 or Cnn.MLNet.CnnPrecision.Auto))
            throw new CliUsageException($"--engine onnxruntime computes in float32; drop --precision {arguments.String("--precision")} or use --engine torch");
    }

    /// <summary>
    /// Sets how an inference verb's <paramref name="network"/> computes from <c>--precision</c>, <c>--memory-format</c> and
    /// <c>--engine</c>; an option not given keeps the network's own setting (a model file's stored inference settings, float32
    /// contiguous with the Auto engine for a bare backbone). <c>--engine onnxruntime</c> alone computes in float32, the only arithmetic it has.
    /// </summary>
    internal static void Apply(Cnn.MLNet.Networks.CnnNetwork network, CliArguments arguments)
    {
        var engine = arguments.String("--engine") is null ? network.Engine : Engine(arguments);
        var precision = arguments.String("--precision") is not null ? Precision(arguments)
            : arguments.String("--engine") is not null && engine == Cnn.MLNet.CnnInferenceEngine.OnnxRuntime ? Cnn.MLNet.CnnPrecision.Float32
            : network.Precision;
        network.UseCompute(precision, arguments.String("--memory-format") is null ? network.MemoryFormat : MemoryFormat(arguments));
        network.UseEngine(engine);
    }

    /// <summary>Prints on stderr what the Auto engine chose and the rates it measured, once it has chosen (a pass of at least 8 images).</summary>
    internal static void ReportEngine(Cnn.MLNet.Networks.CnnNetwork network, TextWriter stderr)
    {
        if (network.Engine == Cnn.MLNet.CnnInferenceEngine.Auto && network.AutoChoice is not null)
            stderr.WriteLine($"cnn: inference engine {network.EngineDescription}");
    }
}
