using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;

namespace Cnn.Cli;

/// <summary>
/// The <c>cnn</c> command tree in System.CommandLine: a subcommand per verb with its declared options (typed where an options
/// class declares them, <see cref="DeclaredOption"/>; strings and flags otherwise), positional arguments where the verb takes
/// them, and a <c>help</c> verb. The library parses (POSIX and <c>--name=value</c> forms, short aliases, <c>--</c>, unknown
/// options refused), expands response files (<c>@file</c>), answers <c>--help</c> and <c>--version</c> and completes words for
/// shells (<c>cnn [suggest] …</c>); help is drawn in cnn's own layout (<see cref="CliHelp"/>).
/// </summary>
internal static class CliParser
{
    /// <summary>The help option every verb has, as the help text lists it.</summary>
    public static CliOption Help { get; } = new("--help", "show this help", Alias: "-h");

    private static readonly Lazy<Tree> Built = new(Build);

    /// <summary>The root command, built once from <see cref="CliApp.Commands"/>.</summary>
    public static RootCommand Root => Built.Value.Root;

    /// <summary>The verb a parsed subcommand stands for, or null for the root and <c>help</c>.</summary>
    public static ICliCommand? VerbOf(Command command) => Built.Value.Verbs.TryGetValue(command, out var verb) ? verb.Verb : null;

    private sealed record Tree(RootCommand Root, IReadOnlyDictionary<Command, VerbSymbols> Verbs);

    /// <summary>A verb and its System.CommandLine symbols, by option name.</summary>
    private sealed record VerbSymbols(ICliCommand Verb, IReadOnlyDictionary<string, Option> Options, Argument<string[]> Positionals);

    private static Tree Build()
    {
        var root = new RootCommand("cnn: transfer learning with CNN backbones (TorchSharp + ML.NET)");
        foreach (var option in root.Options)
        {
            if (option is HelpOption) option.Action = new CliHelp();
            else if (option is VersionOption) option.Action = new VersionAction();
        }
        var verbs = new Dictionary<Command, VerbSymbols>();
        foreach (var verb in CliApp.Commands)
        {
            var command = new Command(verb.Name, verb.Summary);
            var options = new Dictionary<string, Option>(StringComparer.Ordinal);
            foreach (var declared in verb.Options)
            {
                Option option = declared.Symbol ?? (declared.IsFlag
                    ? new Option<bool>(declared.Name, Aliases(declared)) { Description = declared.Description }
                    : new Option<string>(declared.Name, Aliases(declared)) { Description = declared.Description, HelpName = declared.ValueName });
                options.Add(declared.Name, option);
                command.Options.Add(option);
            }
            var positionals = new Argument<string[]>("arguments") { Arity = verb.Positionals is null ? ArgumentArity.Zero : ArgumentArity.ZeroOrMore };
            command.Arguments.Add(positionals);
            var symbols = new VerbSymbols(verb, options, positionals);
            command.SetAction(result => verb.Run(Arguments(result, symbols), result.InvocationConfiguration.Output, result.InvocationConfiguration.Error));
            verbs.Add(command, symbols);
            root.Subcommands.Add(command);
        }
        var help = new Command("help", "show the commands, or a command's options") { Hidden = true };
        var topic = new Argument<string[]>("command") { Arity = ArgumentArity.ZeroOrMore };
        help.Arguments.Add(topic);
        help.SetAction(result => CliHelp.Topic(result.GetValue(topic) ?? [], result.InvocationConfiguration.Output, result.InvocationConfiguration.Error));
        root.Subcommands.Add(help);
        return new Tree(root, verbs);
    }

    /// <summary>The parsed options and positional arguments of a verb, with the verb's own reading of stray options.</summary>
    /// <exception cref="CliUsageException">An unknown option among the positional arguments.</exception>
    private static CliArguments Arguments(ParseResult result, VerbSymbols symbols)
    {
        var given = result.GetValue(symbols.Positionals) ?? [];
        var tokens = result.Tokens.Select(t => t.Value).ToList();
        int separator = tokens.IndexOf("--");
        // A verb that takes positional arguments receives unknown options as arguments; only those after "--" may start with '-'.
        if (given.FirstOrDefault(p => p.Length > 1 && p.StartsWith('-') && (separator < 0 || tokens.IndexOf(p, separator) < 0)) is { } stray)
            throw new CliUsageException($"unknown option '{stray}' (see 'cnn {symbols.Verb.Name} --help')");
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var flags = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, option) in symbols.Options)
        {
            if (result.GetResult(option) is not { Implicit: false }) continue;
            if (option is Option<bool> flag)
            {
                if (result.GetValue(flag)) flags.Add(name);
            }
            else if (option is Option<string> text && result.GetValue(text) is { } value)
            {
                values[name] = value;
            }
        }
        return new CliArguments(symbols.Options.Keys, values, flags, given) { Result = result };
    }

    private static string[] Aliases(CliOption option) => option.Alias is null ? [] : [option.Alias];

    /// <summary>System.CommandLine's message in the verb's terms (it calls every stray token a "command or argument").</summary>
    public static string Describe(string message, ICliCommand command)
    {
        const string unrecognized = "Unrecognized command or argument '";
        if (message.StartsWith(unrecognized, StringComparison.Ordinal))
        {
            string token = message[unrecognized.Length..].TrimEnd('.', '\'');
            return token.StartsWith('-')
                ? $"unknown option '{token}' (see 'cnn {command.Name} --help')"
                : $"unexpected argument '{token}'{(command.Positionals is null ? $": 'cnn {command.Name}' takes options only" : "")}";
        }
        return message.TrimEnd('.');
    }

    /// <summary><c>--version</c>: <c>cnn</c> and the version.</summary>
    private sealed class VersionAction : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            parseResult.InvocationConfiguration.Output.WriteLine($"cnn {CliApp.Version}");
            return 0;
        }
    }
}
