using System.Globalization;

namespace Cnn.Cli;

/// <summary>Parsed options (<c>--name value</c>, <c>--name=value</c>, flags) and positional arguments of one verb.</summary>
public sealed class CliArguments
{
    private readonly Dictionary<string, List<string>> _options = new(StringComparer.Ordinal);
    private readonly HashSet<string> _flags = new(StringComparer.Ordinal);
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    private CliArguments() { }

    /// <summary>Arguments that are not options, in order.</summary>
    public IReadOnlyList<string> Positionals { get; private set; } = Array.Empty<string>();

    /// <summary>Parses the arguments after the verb. <paramref name="flags"/> lists the options that take no value.</summary>
    public static CliArguments Parse(IEnumerable<string> args, IReadOnlySet<string> flags)
    {
        var result = new CliArguments();
        var positionals = new List<string>();
        var queue = new Queue<string>(args);
        bool onlyPositionals = false;
        while (queue.Count > 0)
        {
            string arg = queue.Dequeue();
            if (onlyPositionals || !arg.StartsWith("--", StringComparison.Ordinal) || arg == "-")
            {
                positionals.Add(arg);
                continue;
            }
            if (arg == "--") { onlyPositionals = true; continue; }
            string name = arg, value;
            int equals = arg.IndexOf('=');
            if (equals > 0)
            {
                name = arg[..equals];
                value = arg[(equals + 1)..];
            }
            else if (flags.Contains(arg) || arg == "--help")
            {
                result._flags.Add(arg);
                continue;
            }
            else
            {
                if (queue.Count == 0)
                    throw new CliUsageException($"option {arg} needs a value");
                value = queue.Dequeue();
            }
            if (flags.Contains(name))
                throw new CliUsageException($"option {name} takes no value");
            if (!result._options.TryGetValue(name, out var list))
                result._options[name] = list = new List<string>();
            list.Add(value);
        }
        result.Positionals = positionals;
        return result;
    }

    /// <summary>True when the flag was given.</summary>
    public bool Flag(string name)
    {
        _read.Add(name);
        return _flags.Contains(name);
    }

    /// <summary>The option's last value, or null.</summary>
    public string? String(string name)
    {
        _read.Add(name);
        return _options.TryGetValue(name, out var values) ? values[^1] : null;
    }

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

    /// <summary>Fails with a usage error if an option was given that the verb never asked for.</summary>
    public void EnsureAllRead()
    {
        var unknown = _options.Keys.Concat(_flags).Where(k => !_read.Contains(k) && k != "--help").ToList();
        if (unknown.Count > 0)
            throw new CliUsageException($"unknown option{(unknown.Count > 1 ? "s" : "")} {string.Join(", ", unknown)}");
    }
}
