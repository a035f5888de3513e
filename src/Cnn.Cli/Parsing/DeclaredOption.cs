using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Reflection;
using Cnn.MLNet;

namespace Cnn.Cli;

/// <summary>
/// An options property declared for the command line with <see cref="CommandLineOptionAttribute"/>, turned into a typed
/// System.CommandLine option (an <c>Option&lt;int&gt;</c>, <c>Option&lt;double&gt;</c>, <c>Option&lt;bool&gt;</c>, an enum's or a
/// string's) whose parser checks the declared range or words with the messages every verb uses, and bound back to the property.
/// </summary>
internal sealed class DeclaredOption
{
    private readonly Func<ParseResult, object?> _read;
    private Func<string, (object? Value, string? Error)> _parse = text => (text, null);

    private DeclaredOption(PropertyInfo property, CommandLineOptionAttribute declaration)
    {
        Property = property;
        Declaration = declaration;
        Type type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
        IsFlag = type == typeof(bool) && !declaration.OnOff;
        ValueName = IsFlag ? null : declaration.ValueName ?? (type == typeof(int) ? "N"
            : type == typeof(double) ? "F"
            : type == typeof(bool) ? "on|off"
            : type.IsEnum ? string.Join('|', EnumWords(type).Select(w => w.Listed))
            : throw new InvalidOperationException($"{property.DeclaringType?.Name}.{property.Name}: give the option's ValueName"));
        var (symbol, read) = type == typeof(int) ? Typed(IntParser(declaration))
            : type == typeof(double) ? Typed(DoubleParser(declaration))
            : type == typeof(string) ? Typed<string>(text => (text, null))
            : IsFlag ? Flag(declaration)
            : type == typeof(bool) ? Switch(declaration)
            : type.IsEnum ? ((Option, Func<ParseResult, object?>))typeof(DeclaredOption).GetMethod(nameof(EnumOption), BindingFlags.NonPublic | BindingFlags.Instance)!
                .MakeGenericMethod(type).Invoke(this, [])!
            : throw new InvalidOperationException($"{property.DeclaringType?.Name}.{property.Name}: {type.Name} options are not supported on the command line");
        Symbol = symbol;
        _read = read;
    }

    /// <summary>The property the option sets.</summary>
    public PropertyInfo Property { get; }

    /// <summary>The property's declaration.</summary>
    public CommandLineOptionAttribute Declaration { get; }

    /// <summary>The typed System.CommandLine option.</summary>
    public Option Symbol { get; }

    /// <summary>Whether the option is a flag (takes no value).</summary>
    public bool IsFlag { get; }

    /// <summary>The value's placeholder in help, or null for a flag.</summary>
    public string? ValueName { get; }

    /// <summary>Every declared option of <paramref name="optionsType"/>, in the order its properties are declared (base class first).</summary>
    public static IReadOnlyList<DeclaredOption> Of(Type optionsType) => Cache.GetOrAdd(optionsType, type =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Select(p => (Property: p, Declaration: p.GetCustomAttribute<CommandLineOptionAttribute>()))
            .Where(p => p.Declaration is not null)
            .OrderBy(p => Depth(p.Property.DeclaringType!)).ThenBy(p => p.Property.MetadataToken)
            .Select(p => new DeclaredOption(p.Property, p.Declaration!))
            .ToList());

    /// <summary>
    /// The option as a verb declares it: its help line ends with the value <paramref name="defaults"/> holds (none when that is
    /// null, for a flag, or when <paramref name="defaults"/> itself is null: a default that depends on the verb's input).
    /// </summary>
    public CliOption ToCliOption(object? defaults)
    {
        string suffix = IsFlag || defaults is null || Property.GetValue(defaults) is not { } value ? "" : $" (default {Format(value)})";
        return new CliOption(Declaration.Name, Declaration.HelpText + suffix, ValueName, Declaration.Alias) { Symbol = Symbol };
    }

    /// <summary>The declared option of <paramref name="optionsType"/> named <paramref name="name"/> (e.g. <c>--precision</c>).</summary>
    public static DeclaredOption Named(Type optionsType, string name) => Of(optionsType).Single(o => o.Declaration.Name == name);

    /// <summary>Parses a value as the option does, for a verb that reads the same words into another setting.</summary>
    /// <exception cref="CliUsageException">The value is not one the option accepts; the message names the option.</exception>
    public object Parse(string text)
    {
        var (value, error) = _parse(text);
        return error is null ? value! : throw new CliUsageException(error);
    }

    /// <summary>Whether the command line gave the option.</summary>
    public bool IsGiven(ParseResult result) => result.GetResult(Symbol) is { Implicit: false };

    /// <summary>Sets the property of <paramref name="target"/> when the command line gave the option; returns whether it did.</summary>
    public bool Bind(ParseResult result, object target)
    {
        if (!IsGiven(result)) return false;
        Property.SetValue(target, _read(result));
        return true;
    }

    /// <summary>A value as the command line writes it: an enum by its listed word, a switch as on/off, numbers invariantly.</summary>
    private string Format(object value) => value switch
    {
        bool b => b ? "on" : "off",
        Enum e => EnumWords(e.GetType()).First(w => Equals(w.Value, e)).Listed,
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private (Option, Func<ParseResult, object?>) Typed<T>(Func<string, (T? Value, string? Error)> parse)
    {
        _parse = text => parse(text);
        var option = new Option<T>(Declaration.Name, Aliases()) { HelpName = ValueName, Description = Declaration.HelpText };
        option.CustomParser = argument =>
        {
            var (value, error) = parse(argument.Tokens.Count > 0 ? argument.Tokens[^1].Value : "");
            if (error is not null) argument.AddError(error);
            return value!;
        };
        return (option, result => result.GetValue(option));
    }

    private (Option, Func<ParseResult, object?>) Flag(CommandLineOptionAttribute declaration)
    {
        var option = new Option<bool>(declaration.Name, Aliases()) { Description = declaration.HelpText };
        return (option, result => result.GetValue(option));
    }

    private (Option, Func<ParseResult, object?>) Switch(CommandLineOptionAttribute declaration)
    {
        // The words as a string option: System.CommandLine gives a bool option only the tokens true and false.
        var parse = SwitchParser(declaration);
        var (option, _) = Typed<string>(text => parse(text) is (_, { } error) ? (null, error) : (text, null));
        _parse = text => parse(text);
        option.CompletionSources.Add("on", "off");
        return (option, result => parse(result.GetValue((Option<string>)option) ?? "").Item1);
    }

    private (Option, Func<ParseResult, object?>) EnumOption<TEnum>() where TEnum : struct, Enum
    {
        var words = EnumWords(typeof(TEnum));
        string listed = Listing(words.Select(w => w.Listed).ToList());
        var (option, read) = Typed<TEnum>(text =>
        {
            foreach (var word in words)
                if (word.Spellings.Contains(text, StringComparer.Ordinal)) return ((TEnum)word.Value, null);
            return (default, $"option {Declaration.Name} must be {listed}, got '{text}'");
        });
        option.CompletionSources.Clear(); // the listed words, not the members' names
        option.CompletionSources.Add(words.Select(w => w.Listed).ToArray());
        return (option, read);
    }

    private Func<string, (int, string?)> IntParser(CommandLineOptionAttribute declaration)
    {
        int min = double.IsNaN(declaration.Min) ? int.MinValue : (int)declaration.Min;
        int max = double.IsNaN(declaration.Max) ? int.MaxValue : (int)declaration.Max;
        return text => int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) && value >= min && value <= max
            ? (value, null)
            : (0, FormattableString.Invariant($"option {declaration.Name} must be an integer in [{min}, {max}], got '{text}'"));
    }

    private static Func<string, (double, string?)> DoubleParser(CommandLineOptionAttribute declaration)
    {
        double min = double.IsNaN(declaration.Min) ? double.MinValue : declaration.Min;
        double max = double.IsNaN(declaration.Max) ? double.MaxValue : declaration.Max;
        return text => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && double.IsFinite(value) && value >= min && value <= max
            ? (value, null)
            : (0, FormattableString.Invariant($"option {declaration.Name} must be a number in [{min}, {max}], got '{text}'"));
    }

    private static Func<string, (bool, string?)> SwitchParser(CommandLineOptionAttribute declaration) => text => text switch
    {
        "on" or "true" or "yes" => (true, null),
        "off" or "false" or "no" => (false, null),
        _ => (false, $"option {declaration.Name} must be on or off, got '{text}'"),
    };

    private string[] Aliases() => Declaration.Alias is null ? [] : [Declaration.Alias];

    /// <summary>The words of an enum option: the listed one, every accepted spelling, and the member they name.</summary>
    private IReadOnlyList<(string Listed, string[] Spellings, object Value)> EnumWords(Type type)
    {
        string values = Declaration.Values
            ?? throw new InvalidOperationException($"{Property.DeclaringType?.Name}.{Property.Name}: an enum option declares its Values");
        return values.Split('|').Select(entry =>
        {
            string[] parts = entry.Split('=');
            string[] spellings = parts[0].Split(',');
            string member = parts.Length > 1 ? parts[1] : spellings[0].Replace("-", "", StringComparison.Ordinal);
            object value = Enum.Parse(type, member, ignoreCase: true);
            return (spellings[0], spellings, value);
        }).ToList();
    }

    /// <summary>"a, b or c".</summary>
    private static string Listing(IReadOnlyList<string> words) =>
        words.Count == 1 ? words[0] : string.Join(", ", words.Take(words.Count - 1)) + " or " + words[^1];

    private static int Depth(Type type)
    {
        int depth = 0;
        for (var t = type.BaseType; t is not null; t = t.BaseType) depth++;
        return depth;
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Type, IReadOnlyList<DeclaredOption>> Cache = new();
}
