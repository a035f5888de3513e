using System.Globalization;

namespace Cnn.Cli;

/// <summary>
/// The parsed options and positional arguments of one verb (see <see cref="CliParser"/>), with typed readers that check each
/// value's range and fail with a usage error naming the option.
/// </summary>
public sealed class CliArguments
{
    private readonly HashSet<string> _declared;
    private readonly IReadOnlyDictionary<string, string> _options;
    private readonly IReadOnlySet<string> _flags;

    /// <param name="declared">Every option the verb declares.</param>
    /// <param name="options">The values given, by option name.</param>
    /// <param name="flags">The flags given.</param>
    /// <param name="positionals">The positional arguments, in order.</param>
    public CliArguments(IEnumerable<string> declared, IReadOnlyDictionary<string, string> options, IReadOnlySet<string> flags, IReadOnlyList<string> positionals)
    {
        _declared = declared.ToHashSet(StringComparer.Ordinal);
        _options = options;
        _flags = flags;
        Positionals = positionals;
    }

    /// <summary>
    /// The whole parse, for the typed options an options class declares (<see cref="DeclaredOption.Bind"/>); null for arguments
    /// made without a parse, where no typed option is given.
    /// </summary>
    public System.CommandLine.ParseResult? Result { get; init; }

    /// <summary>Whether the command line gave the option (typed or not).</summary>
    public bool Given(string name) =>
        _options.ContainsKey(Declared(name)) || _flags.Contains(Declared(name)) ||
        Result?.GetResult(name) is System.CommandLine.Parsing.OptionResult { Implicit: false };

    /// <summary>Arguments that are not options, in order.</summary>
    public IReadOnlyList<string> Positionals { get; }

    /// <summary>True when the flag was given.</summary>
    public bool Flag(string name) => _flags.Contains(Declared(name));

    /// <summary>The option's last value, or null.</summary>
    public string? String(string name) => _options.TryGetValue(Declared(name), out var value) ? value : null;

    /// <summary>The option's value; a usage error when it is missing.</summary>
    public string Required(string name) => String(name) ?? throw new CliUsageException($"missing required option {name}");

    /// <summary>The option as an integer within [min, max], or <paramref name="fallback"/>.</summary>
    public int Int(string name, int fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        string? text = String(name);
        if (text is null) return fallback;
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) || value < min || value > max)
            throw new CliUsageException($"option {name} must be an integer in [{min}, {max}], got '{text}'");
        return value;
    }

    /// <summary>The option as an integer within [min, max], or <paramref name="fallback"/> (null: not given).</summary>
    public int? OptionalInt(string name, int? fallback = null, int min = int.MinValue, int max = int.MaxValue) =>
        String(name) is null ? fallback : Int(name, 0, min, max);

    /// <summary>The option as <c>on</c>/<c>off</c> (also true/false, yes/no), or <paramref name="fallback"/>.</summary>
    public bool Switch(string name, bool fallback) => String(name) switch
    {
        null => fallback,
        "on" or "true" or "yes" => true,
        "off" or "false" or "no" => false,
        var other => throw new CliUsageException($"option {name} must be on or off, got '{other}'"),
    };

    /// <summary>The option as a number within [min, max], or <paramref name="fallback"/>.</summary>
    public double? Double(string name, double? fallback = null, double min = double.MinValue, double max = double.MaxValue)
    {
        string? text = String(name);
        if (text is null) return fallback;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !double.IsFinite(value) || value < min || value > max)
            throw new CliUsageException($"option {name} must be a number in [{min}, {max}], got '{text}'");
        return value;
    }

    /// <summary>
    /// The name of an option to look up. An option the verb does not declare can never be given (the parser refuses it), so it
    /// reads as absent: shared parsers (<c>FitRun</c>, <c>TrainSettings</c>) then serve verbs that declare only some of their options.
    /// </summary>
    private string Declared(string name) => _declared.Contains(name) ? name : "\0undeclared";
}
