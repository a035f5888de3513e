using System.CommandLine;
using System.CommandLine.Invocation;
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
            CliHelp.Print(stdout);
            return 2;
        }
        var result = CliParser.Root.Parse(args);
        var command = CliParser.VerbOf(result.CommandResult.Command);
        if (result.Action is ParseErrorAction)
        {
            if (command is null) return UnknownCommand(args[0], stderr);
            return UsageError(command, CliParser.Describe(result.Errors[0].Message, command), stderr);
        }
        if (command is not null && Cnn.MLNet.Distributed.MpiLaunch.IsWorker) stdout = TextWriter.Null; // under mpirun, rank 0 prints for the whole run
        try
        {
            return result.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null });
        }
        catch (CliUsageException ex) when (command is not null)
        {
            return UsageError(command, ex.Message, stderr);
        }
        catch (Exception ex) when (command is not null && Environment.GetEnvironmentVariable("CNN_DEBUG") != "1")
        {
            stderr.WriteLine($"cnn {command.Name}: error: {UserMessage.Of(ex)}");
            return 1;
        }
    }

    private static int UsageError(ICliCommand command, string message, TextWriter stderr)
    {
        stderr.WriteLine($"cnn {command.Name}: {message}");
        stderr.WriteLine($"usage: {UsageLine(command)}");
        return 2;
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

    /// <summary>An unknown verb: a usage error naming the close matches.</summary>
    internal static int UnknownCommand(string name, TextWriter stderr)
    {
        var close = Commands.Select(c => c.Name).Where(n => n.StartsWith(name[..Math.Min(2, name.Length)], StringComparison.Ordinal) || name.Contains(n, StringComparison.Ordinal)).ToList();
        stderr.WriteLine($"cnn: unknown command '{name}'.{(close.Count > 0 ? $" Did you mean '{string.Join("', '", close)}'?" : "")} Run 'cnn help' for the list of commands.");
        return 2;
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
