using Cnn.Backbones.Diagnostics;
using Cnn.Backbones.Models;

namespace Cnn.Cli.Commands;

/// <summary><c>cnn summary &lt;model&gt;</c>: a torchsummary-style per-layer table with parameter and memory totals.</summary>
internal sealed class SummaryCommand : ICliCommand
{
    public string Name => "summary";

    public string Summary => "per-layer table (output shapes, parameters) and totals of a model";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        new("--input", "input shape CxHxW (default: the model's configuration, e.g. 3x224x224)", "CxHxW"),
        new("--num-classes", "classes of the classifier (default: the configuration's)", "N"),
    ];

    public string? Positionals => "<model>";

    public int Run(CliArguments arguments, TextWriter stdout, TextWriter stderr)
    {
        if (arguments.Positionals.Count != 1)
            throw new CliUsageException("give exactly one model name (see 'cnn models')");
        string name = CliApp.RequireModel(arguments.Positionals[0]);
        string? input = arguments.String("--input");
        int? numClasses = arguments.OptionalInt("--num-classes", min: 0);
        var info = ModelRegistry.Get(name);
        long[] shape = input is null
            ? new long[] { info.DefaultConfig.InputSize.Channels, info.DefaultConfig.InputSize.Height, info.DefaultConfig.InputSize.Width }
            : ParseShape(input);
        var options = new ModelOptions
        {
            InChannels = (int)shape[0],
            NumClasses = numClasses ?? info.DefaultConfig.NumClasses,
            // Only ViTs are built for one input size (their position embedding); CNNs ignore it.
            ImageSize = shape[1] == shape[2] ? (int)shape[1] : null,
        };
        using var model = ModelRegistry.Create(name, options);
        var summary = ModelSummary.Create(model, shape);
        stdout.WriteLine($"{name}  input {string.Join("x", shape)}");
        stdout.Write(summary.ToTable());
        return 0;
    }

    /// <summary>Parses <c>CxHxW</c> (e.g. <c>3x224x224</c>).</summary>
    internal static long[] ParseShape(string text)
    {
        var parts = text.Split('x', 'X', ',');
        if (parts.Length != 3 || !parts.All(p => long.TryParse(p, out long v) && v > 0))
            throw new CliUsageException($"--input must be CxHxW with positive integers (e.g. 3x224x224), got '{text}'");
        return parts.Select(long.Parse).ToArray();
    }
}
