using System.Globalization;
using Cnn.Cli.Inference;
using Cnn.MLNet.Explain;

namespace Cnn.Cli.Commands;

/// <summary>
/// <c>cnn explain</c>: the Grad-CAM heatmap of a saved classifier's predicted (or given) class at its last (or given) feature stage,
/// overlaid on the image as the model saw it.
/// </summary>
internal sealed class ExplainCommand : ICliCommand
{
    public string Name => "explain";

    public string Summary => "Grad-CAM: where in an image a saved model looks for a class, as a heatmap over the image (PNG)";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        CommonOptions.ModelFile(),
        CommonOptions.Output("the PNG to write (default cam.png)"),
        new("--class", "the class to explain, by index or name (default: the predicted class)", "K"),
        new("--stage", "the feature stage whose maps are weighed (default: the last; 'cnn summary' shows them)", "k"),
        new("--alpha", "weight of the heatmap over the image, in [0, 1] (default 0.5)", "F"),
    ];

    public string? Positionals => "<image>";

    public int Run(CliArguments arguments, TextWriter stdout, TextWriter stderr)
    {
        string modelFile = arguments.Required("--model-file");
        string output = OutputPath.Check(arguments.String("--output") ?? "cam.png", "--output");
        string? classText = arguments.String("--class");
        int? stage = arguments.OptionalInt("--stage", min: 0);
        double alpha = arguments.Double("--alpha", 0.5, min: 0, max: 1)!.Value;
        var files = ImageFiles.FromPositionals(arguments);
        if (files.Count != 1) throw new CliUsageException("give exactly one image");
        var encoded = ImageFiles.ReadAll(files);

        using var model = PipelineModel.Load(modelFile);
        int? target = classText is null ? null : ClassIndex(classText, model.ClassNames);
        var explanation = model.Classifier.Explain(ImageFiles.ToSamples(files, encoded)[0], target, stage);
        explanation.Overlay(alpha).SavePng(output);
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{files[0]}: class {explanation.ClassIndex} '{explanation.ClassName}' (probability {explanation.Probability:0.0000}), " +
            $"stage {explanation.Map.Stage} ({explanation.Map.StageName}, {explanation.Map.RawHeight}x{explanation.Map.RawWidth})"));
        stdout.WriteLine($"saved: {Path.GetFullPath(output)} ({explanation.Width}x{explanation.Height})");
        return 0;
    }

    /// <summary>A class given by index or by name.</summary>
    internal static int ClassIndex(string text, IReadOnlyList<string> names)
    {
        if (int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int index))
            return index >= 0 && index < names.Count ? index
                : throw new CliUsageException($"option --class {index} is out of range: the model has {names.Count} classes (0..{names.Count - 1})");
        int found = names.ToList().IndexOf(text);
        return found >= 0 ? found : throw new CliUsageException($"option --class '{text}' is not a class of the model; its classes are {string.Join(", ", names)}");
    }
}
