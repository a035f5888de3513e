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

    /// <summary><c>-w, --weights</c>: a weight file.</summary>
    public static CliOption Weights(string description = "weights to load (.pth or .safetensors)") => new("--weights", description, "<file>", "-w");

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
