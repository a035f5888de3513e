using System.Reflection;
using Cnn.Backbones.Models;

namespace Cnn.Cli;

/// <summary>The <c>cnn</c> command: dispatches a verb and turns every failure into one clear line on stderr.</summary>
public static class CliApp
{
    /// <summary>Every verb, in the order <c>cnn help</c> lists them.</summary>
    public static IReadOnlyList<ICliCommand> Commands { get; } = new ICliCommand[]
    {
        new Commands.ModelsCommand(),
        new Commands.SummaryCommand(),
        new Commands.WeightsCommand(),
        new Commands.ImportCommand(),
        new Commands.ExportCommand(),
        new Commands.PredictCommand(),
        new Commands.FeaturesCommand(),
        new Commands.ZeroShotCommand(),
        new Commands.EmbedCommand(),
        new Commands.TrainCommand(),
        new Commands.EvalCommand(),
        new Commands.DistillCommand(),
        new Commands.ExplainCommand(),
        new Commands.FeatureMapsCommand(),
        new Commands.LrFindCommand(),
    };

    /// <summary>
    /// The version <c>cnn --version</c> prints: the package version and the commit it was built from ("0.1.0+1b6694e…"), one value
    /// set in Directory.Build.props.
    /// </summary>
    public static string Version =>
        typeof(CliApp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(CliApp).Assembly.GetName().Version?.ToString() ?? "unknown";

    /// <summary>Runs the command line and returns the process exit code (0 success, 1 failure, 2 usage error).</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Length == 0)
        {
            PrintHelp(stdout);
            return 2;
        }
        switch (args[0])
        {
            case "--version":
                stdout.WriteLine($"cnn {Version}");
                return 0;
            case "help" or "--help" or "-h" when args.Length == 1:
                PrintHelp(stdout);
                return 0;
            case "help":
                if (Find(args[1]) is not { } verb) return UnknownCommand(args[1], stderr);
                PrintHelp(verb, stdout);
                return 0;
        }
        if (Find(args[0]) is not { } command) return UnknownCommand(args[0], stderr);
        if (Cnn.MLNet.Distributed.MpiLaunch.IsWorker) stdout = TextWriter.Null; // under mpirun, rank 0 prints for the whole run
        try
        {
            var arguments = CliParser.Parse(command, args[1..]);
            if (arguments.IsHelp)
            {
                PrintHelp(command, stdout);
                return 0;
            }
            return command.Run(arguments, stdout, stderr);
        }
        catch (CliUsageException ex)
        {
            stderr.WriteLine($"cnn {command.Name}: {ex.Message}");
            stderr.WriteLine($"usage: {UsageLine(command)}");
            return 2;
        }
        catch (Exception ex) when (Environment.GetEnvironmentVariable("CNN_DEBUG") != "1")
        {
            stderr.WriteLine($"cnn {command.Name}: error: {UserMessage.Of(ex)}");
            return 1;
        }
    }

    /// <summary>The usage line of a verb, made from its declared options: <c>cnn train [-m|--model &lt;name&gt;] …</c>.</summary>
    public static string UsageLine(ICliCommand command) =>
        $"cnn {command.Name}{(command.Positionals is { } p ? " " + p : "")} {string.Join(' ', command.Options.Select(o => o.UsageText))}".TrimEnd();

    /// <summary>Checks a model name before any work: an unknown name is a usage error naming the close matches.</summary>
    /// <exception cref="CliUsageException">No model has this name.</exception>
    public static string RequireModel(string name)
    {
        if (ModelRegistry.Exists(name)) return ModelRegistry.Get(name).Name;
        var close = ModelRegistry.CloseMatches(name);
        throw new CliUsageException($"unknown model '{name}'" + (close.Count > 0 ? $"; did you mean {string.Join(", ", close)}?" : "") + " ('cnn models' lists them)");
    }

    private static ICliCommand? Find(string name) => Commands.FirstOrDefault(c => c.Name == name);

    private static int UnknownCommand(string name, TextWriter stderr)
    {
        var close = Commands.Select(c => c.Name).Where(n => n.StartsWith(name[..Math.Min(2, name.Length)], StringComparison.Ordinal) || name.Contains(n, StringComparison.Ordinal)).ToList();
        stderr.WriteLine($"cnn: unknown command '{name}'.{(close.Count > 0 ? $" Did you mean '{string.Join("', '", close)}'?" : "")} Run 'cnn help' for the list of commands.");
        return 2;
    }

    private static void PrintHelp(TextWriter stdout)
    {
        stdout.WriteLine("cnn: transfer learning with CNN backbones (TorchSharp + ML.NET)");
        stdout.WriteLine();
        stdout.WriteLine("commands:");
        foreach (var command in Commands)
            stdout.WriteLine($"  {command.Name,-10} {command.Summary}");
        stdout.WriteLine();
        stdout.WriteLine("Run 'cnn help <command>' or 'cnn <command> --help' for a command's options; 'cnn --version' for the version.");
    }

    private static void PrintHelp(ICliCommand command, TextWriter stdout)
    {
        stdout.WriteLine($"usage: {UsageLine(command)}");
        stdout.WriteLine();
        stdout.WriteLine(command.Summary);
        stdout.WriteLine();
        stdout.WriteLine("options:");
        var options = command.Options.Append(CliParser.Help).ToList();
        int width = options.Max(o => o.HelpText.Length) + 2;
        foreach (var option in options)
            stdout.WriteLine($"  {option.HelpText.PadRight(width)}{option.Description}");
        if (command.Details.Length > 0)
        {
            stdout.WriteLine();
            stdout.WriteLine(command.Details);
        }
    }
}

/// <summary>One verb of the <c>cnn</c> command.</summary>
public interface ICliCommand
{
    /// <summary>The verb, e.g. <c>weights</c>.</summary>
    string Name { get; }

    /// <summary>One line for <c>cnn help</c>.</summary>
    string Summary { get; }

    /// <summary>The options the verb takes (the parser refuses any other); <c>-h</c>/<c>--help</c> is added to every verb.</summary>
    IReadOnlyList<CliOption> Options { get; }

    /// <summary>The positional arguments' placeholder in the usage line (e.g. <c>&lt;image&gt;...</c>), or null when the verb takes none.</summary>
    string? Positionals => null;

    /// <summary>More lines for <c>cnn &lt;verb&gt; --help</c> (defaults, notes); empty by default.</summary>
    string Details => "";

    /// <summary>Runs the verb; returns the exit code. Throws <see cref="CliUsageException"/> for bad arguments.</summary>
    int Run(CliArguments arguments, TextWriter stdout, TextWriter stderr);
}

/// <summary>The command line was malformed (unknown option, missing value, …).</summary>
public sealed class CliUsageException(string message) : Exception(message);
