namespace Cnn.MLNet;

/// <summary>
/// Declares how an options property is given on a command line, as ML.NET's <c>[Argument(HelpText = …)]</c>: the option's name,
/// short alias, value placeholder, accepted range or words, and help text. A command-line front end (the <c>cnn</c> tool) builds
/// its typed options, parsing, range messages, completions and help from these declarations, so an option is declared once, on
/// the property it sets. The options class's own <c>Validate</c> still checks every value, whoever set it.
/// </summary>
/// <param name="name">The long name, e.g. <c>--epochs</c>.</param>
[AttributeUsage(AttributeTargets.Property, AllowMultiple = false, Inherited = true)]
public sealed class CommandLineOptionAttribute(string name) : Attribute
{
    /// <summary>The long name, e.g. <c>--epochs</c>.</summary>
    public string Name { get; } = name;

    /// <summary>A short form, e.g. <c>-e</c>, or null.</summary>
    public string? Alias { get; set; }

    /// <summary>
    /// One line for the help text, without the default: the front end appends the default it uses (the property's initial value
    /// unless the command sets another).
    /// </summary>
    public string HelpText { get; set; } = "";

    /// <summary>
    /// The value's placeholder in help, e.g. <c>&lt;folder&gt;</c>; by default <c>N</c> for an integer, <c>F</c> for a number, the
    /// <see cref="Values"/> for an enum and <c>on|off</c> for an <see cref="OnOff"/> switch.
    /// </summary>
    public string? ValueName { get; set; }

    /// <summary>Smallest value the command line accepts for a number (NaN: the type's own).</summary>
    public double Min { get; set; } = double.NaN;

    /// <summary>Largest value the command line accepts for a number (NaN: the type's own).</summary>
    public double Max { get; set; } = double.NaN;

    /// <summary>
    /// For an enum property: the words the command line accepts, separated by <c>|</c>, in the order help lists them. A word
    /// names the member whose name it matches (case and hyphens aside), or a member explicitly as <c>word=Member</c>; further
    /// spellings follow a comma and are accepted but not listed, e.g. <c>float32,fp32|bfloat16,bf16</c>.
    /// </summary>
    public string? Values { get; set; }

    /// <summary>For a bool property: the option takes <c>on</c> or <c>off</c> (also true/false, yes/no) instead of being a flag.</summary>
    public bool OnOff { get; set; }
}
