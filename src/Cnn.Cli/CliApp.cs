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
        new Commands.PredictCommand(),
        new Commands.FeaturesCommand(),
        new Commands.TrainCommand(),
        new Commands.EvalCommand(),
        new Commands.DistillCommand(),
    };

    /// <summary>Runs the command line and returns the process exit code (0 success, 1 failure, 2 usage error).</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Length == 0 || args[0] is "help" or "--help" or "-h")
        {
            PrintHelp(stdout);
            return args.Length == 0 ? 2 : 0;
        }
        var command = Commands.FirstOrDefault(c => c.Name == args[0]);
        if (command is null)
        {
            stderr.WriteLine($"cnn: unknown command '{args[0]}'. Run 'cnn help' for the list of commands.");
            return 2;
        }
        try
        {
            var arguments = CliArguments.Parse(args.Skip(1), command.Flags);
            if (arguments.Flag("--help"))
            {
                stdout.WriteLine($"usage: cnn {command.Usage}");
                if (command.Details.Length > 0) stdout.WriteLine(command.Details);
                return 0;
            }
            return command.Run(arguments, stdout, stderr);
        }
        catch (CliUsageException ex)
        {
            stderr.WriteLine($"cnn {command.Name}: {ex.Message}");
            stderr.WriteLine($"usage: cnn {command.Usage}");
            return 2;
        }
        catch (Exception ex) when (Environment.GetEnvironmentVariable("CNN_DEBUG") != "1")
        {
            stderr.WriteLine($"cnn {command.Name}: error: {OneLine(ex)}");
            return 1;
        }
    }

    private static string OneLine(Exception ex)
    {
        // TypeInitializationException and friends wrap the useful message.
        while (ex is TypeInitializationException or System.Reflection.TargetInvocationException or AggregateException && ex.InnerException is not null)
            ex = ex.InnerException!;
        return ex.Message.ReplaceLineEndings(" ").Trim();
    }

    private static void PrintHelp(TextWriter stdout)
    {
        stdout.WriteLine("cnn: transfer learning with CNN backbones (TorchSharp + ML.NET)");
        stdout.WriteLine();
        stdout.WriteLine("commands:");
        foreach (var command in Commands)
            stdout.WriteLine($"  {command.Name,-10} {command.Summary}");
        stdout.WriteLine();
        stdout.WriteLine("Run 'cnn <command> --help' for a command's options.");
    }
}

/// <summary>One verb of the <c>cnn</c> command.</summary>
public interface ICliCommand
{
    /// <summary>The verb, e.g. <c>weights</c>.</summary>
    string Name { get; }

    /// <summary>One line for <c>cnn help</c>.</summary>
    string Summary { get; }

    /// <summary>The usage line after <c>cnn </c>.</summary>
    string Usage { get; }

    /// <summary>More lines for <c>cnn &lt;verb&gt; --help</c> (defaults, notes); empty by default.</summary>
    string Details => "";

    /// <summary>Options that take no value (e.g. <c>--json</c>).</summary>
    IReadOnlySet<string> Flags { get; }

    /// <summary>Runs the verb; returns the exit code. Throws <see cref="CliUsageException"/> for bad arguments.</summary>
    int Run(CliArguments arguments, TextWriter stdout, TextWriter stderr);
}

/// <summary>The command line was malformed (unknown option, missing value, …).</summary>
public sealed class CliUsageException(string message) : Exception(message);
