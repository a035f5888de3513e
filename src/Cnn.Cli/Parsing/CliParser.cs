using System.CommandLine;

namespace Cnn.Cli;

/// <summary>
/// Parses one verb's arguments with System.CommandLine from the verb's declared <see cref="CliOption"/>s (POSIX and
/// <c>--name=value</c> forms, short aliases, <c>--</c>, unknown options refused), and gives them to the verb as
/// <see cref="CliArguments"/>, whose typed readers check ranges with the verb's own messages.
/// </summary>
internal static class CliParser
{
    /// <summary>The help option every verb has.</summary>
    public static CliOption Help { get; } = new("--help", "show this help", Alias: "-h");

    /// <summary>Parses <paramref name="args"/> (after the verb) for <paramref name="command"/>.</summary>
    /// <exception cref="CliUsageException">Unknown option, missing value, or positional arguments for a verb that takes none.</exception>
    public static CliArguments Parse(ICliCommand command, IReadOnlyList<string> args)
    {
        var parser = new Command(command.Name, command.Summary) { TreatUnmatchedTokensAsErrors = true };
        var options = new Dictionary<string, Option>(StringComparer.Ordinal);
        foreach (var declared in command.Options.Append(Help))
        {
            Option option = declared.IsFlag
                ? new Option<bool>(declared.Name, Aliases(declared))
                : new Option<string>(declared.Name, Aliases(declared)) { AllowMultipleArgumentsPerToken = false };
            options.Add(declared.Name, option);
            parser.Options.Add(option);
        }
        var positionals = new Argument<string[]>("arguments") { Arity = command.Positionals is null ? ArgumentArity.Zero : ArgumentArity.ZeroOrMore };
        parser.Arguments.Add(positionals);

        var result = parser.Parse(args);
        if (result.GetValue((Option<bool>)options[Help.Name]))
            return CliArguments.HelpRequested;
        if (result.Errors.Count > 0)
            throw new CliUsageException(Describe(result.Errors[0].Message, command));
        var given = result.GetValue(positionals) ?? Array.Empty<string>();
        int separator = Array.IndexOf(args.ToArray(), "--");
        // A verb that takes positional arguments receives unknown options as arguments; only those after "--" may start with '-'.
        if (given.FirstOrDefault(p => p.Length > 1 && p.StartsWith('-') && (separator < 0 || Array.IndexOf(args.ToArray(), p, separator) < 0)) is { } stray)
            throw new CliUsageException($"unknown option '{stray}' (see 'cnn {command.Name} --help')");
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var flags = new HashSet<string>(StringComparer.Ordinal);
        foreach (var declared in command.Options)
        {
            var option = options[declared.Name];
            if (result.GetResult(option) is not { Implicit: false }) continue;
            if (declared.IsFlag)
            {
                if (result.GetValue((Option<bool>)option)) flags.Add(declared.Name);
            }
            else if (result.GetValue((Option<string>)option) is { } value)
            {
                values[declared.Name] = value;
            }
        }
        return new CliArguments(command.Options.Select(o => o.Name), values, flags, given);
    }

    private static string[] Aliases(CliOption option) => option.Alias is null ? Array.Empty<string>() : new[] { option.Alias };

    /// <summary>System.CommandLine's message in the verb's terms (it calls every stray token a "command or argument").</summary>
    private static string Describe(string message, ICliCommand command)
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
}
