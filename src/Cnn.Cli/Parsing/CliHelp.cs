using System.CommandLine;
using System.CommandLine.Invocation;

namespace Cnn.Cli;

/// <summary>
/// The action of System.CommandLine's help option (<c>-h</c>, <c>--help</c>) and of <c>cnn help [verb]</c>: the command list, or a
/// verb's usage line, summary and option table, drawn from the verbs' declared options.
/// </summary>
internal sealed class CliHelp : SynchronousCommandLineAction
{
    /// <summary>Help replaces whatever else the command line asked for, errors included.</summary>
    public override bool ClearsParseErrors => true;

    /// <inheritdoc/>
    public override int Invoke(ParseResult parseResult)
    {
        var output = parseResult.InvocationConfiguration.Output;
        if (CliParser.VerbOf(parseResult.CommandResult.Command) is { } verb) Print(verb, output);
        else Print(output);
        return 0;
    }

    /// <summary><c>cnn help [verb]</c>: the command list, or the verb's help; an unknown verb is a usage error.</summary>
    public static int Topic(IReadOnlyList<string> topic, TextWriter stdout, TextWriter stderr)
    {
        if (topic.Count == 0)
        {
            Print(stdout);
            return 0;
        }
        if (CliApp.Commands.FirstOrDefault(c => c.Name == topic[0]) is not { } verb) return CliApp.UnknownCommand(topic[0], stderr);
        Print(verb, stdout);
        return 0;
    }

    /// <summary>The command list.</summary>
    public static void Print(TextWriter stdout)
    {
        stdout.WriteLine(CliParser.Root.Description);
        stdout.WriteLine();
        stdout.WriteLine("commands:");
        foreach (var command in CliApp.Commands)
            stdout.WriteLine($"  {command.Name,-10} {command.Summary}");
        stdout.WriteLine();
        stdout.WriteLine("Run 'cnn help <command>' or 'cnn <command> --help' for a command's options; 'cnn --version' for the version.");
    }

    /// <summary>A verb's usage line, summary, options and details.</summary>
    public static void Print(ICliCommand command, TextWriter stdout)
    {
        stdout.WriteLine($"usage: {CliApp.UsageLine(command)}");
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
