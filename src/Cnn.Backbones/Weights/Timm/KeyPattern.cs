using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Cnn.Backbones.Weights.Timm;

/// <summary>
/// A dotted state-dict key (or module path) with index variables, e.g. <c>features.{s+1}.{b}.block</c> or
/// <c>trunk_output.block{s}.block{s}-{b}</c>. A variable is written <c>{name}</c>, <c>{name+c}</c>, <c>{name-c}</c>,
/// <c>{k*name}</c> or <c>{k*name+c}</c> (k ≥ 1, c ≥ 0 integers) and stands for the non-negative integer <c>k·name + c</c>;
/// a variable used twice must take the same value.
/// </summary>
internal sealed partial class KeyPattern
{
    private readonly Regex _regex;
    private readonly IReadOnlyList<Term> _terms; // in order of the regex's capture groups
    private readonly IReadOnlyList<object> _parts; // string literals and Terms, for rendering

    /// <summary>Parses a pattern.</summary>
    /// <param name="text">The pattern, e.g. <c>blocks.{s}.{b}.conv_dw</c>; an empty string is the root (matches every key as a prefix).</param>
    /// <exception cref="FormatException">A variable is malformed.</exception>
    public KeyPattern(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        Text = text;
        var terms = new List<Term>();
        var parts = new List<object>();
        var regex = new StringBuilder("^");
        int at = 0;
        foreach (Match m in VariableSyntax().Matches(text))
        {
            string literal = text[at..m.Index];
            parts.Add(literal);
            regex.Append(Regex.Escape(literal));
            var term = Term.Parse(m.Groups[1].Value, text);
            terms.Add(term);
            parts.Add(term);
            regex.Append(@"(\d+)");
            at = m.Index + m.Length;
        }
        string tail = text[at..];
        if (tail.Contains('{') || tail.Contains('}') || parts.OfType<string>().Any(p => p.Contains('{') || p.Contains('}')))
            throw new FormatException($"Key pattern '{text}': a variable must look like {{name}}, {{name+c}}, {{name-c}} or {{k*name+c}}.");
        parts.Add(tail);
        regex.Append(Regex.Escape(tail));
        _terms = terms;
        _parts = parts;
        Variables = terms.Select(t => t.Name).Distinct(StringComparer.Ordinal).ToArray();
        _regex = new Regex(regex.Append('$').ToString(), RegexOptions.CultureInvariant);
    }

    /// <summary>The pattern as written.</summary>
    public string Text { get; }

    /// <summary>The variables the pattern binds, in order of first use.</summary>
    public IReadOnlyList<string> Variables { get; }

    /// <summary>True for the empty (root) pattern.</summary>
    public bool IsRoot => Text.Length == 0;

    /// <summary>
    /// Matches <paramref name="path"/> exactly, extending <paramref name="bindings"/> (values already bound must agree). Returns
    /// the extended bindings, or null when the path does not match or a variable would be negative, fractional or inconsistent.
    /// </summary>
    /// <param name="path">A key or module path.</param>
    /// <param name="bindings">Variables bound so far (not modified).</param>
    public IReadOnlyDictionary<string, int>? Match(string path, IReadOnlyDictionary<string, int> bindings)
    {
        var m = _regex.Match(path);
        if (!m.Success) return null;
        var result = new Dictionary<string, int>(bindings, StringComparer.Ordinal);
        for (int i = 0; i < _terms.Count; i++)
        {
            if (!int.TryParse(m.Groups[i + 1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int value)) return null;
            if (_terms[i].Solve(value) is not { } v) return null;
            if (result.TryGetValue(_terms[i].Name, out int bound) && bound != v) return null;
            result[_terms[i].Name] = v;
        }
        return result;
    }

    /// <summary>Writes the pattern with its variables replaced; null when a variable is unbound.</summary>
    /// <param name="bindings">Variable values.</param>
    public string? Render(IReadOnlyDictionary<string, int> bindings)
    {
        var text = new StringBuilder();
        foreach (var part in _parts)
        {
            if (part is string literal)
            {
                text.Append(literal);
                continue;
            }
            var term = (Term)part;
            if (!bindings.TryGetValue(term.Name, out int v)) return null;
            text.Append((term.Scale * v + term.Offset).ToString(CultureInfo.InvariantCulture));
        }
        return text.ToString();
    }

    /// <inheritdoc />
    public override string ToString() => Text;

    [GeneratedRegex(@"\{([^{}]*)\}", RegexOptions.CultureInvariant)]
    private static partial Regex VariableSyntax();

    [GeneratedRegex(@"^\s*(?:(\d+)\s*\*\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*(?:([+-])\s*(\d+))?\s*$", RegexOptions.CultureInvariant)]
    private static partial Regex TermSyntax();

    /// <summary><c>Scale · Name + Offset</c>.</summary>
    private sealed record Term(string Name, int Scale, int Offset)
    {
        public static Term Parse(string text, string pattern)
        {
            var m = TermSyntax().Match(text);
            if (!m.Success)
                throw new FormatException($"Key pattern '{pattern}': '{{{text}}}' is not a variable; write {{name}}, {{name+c}}, {{name-c}} or {{k*name+c}}.");
            int scale = m.Groups[1].Success ? int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 1;
            int offset = m.Groups[4].Success ? int.Parse(m.Groups[4].Value, CultureInfo.InvariantCulture) : 0;
            if (m.Groups[3].Value == "-") offset = -offset;
            if (scale < 1) throw new FormatException($"Key pattern '{pattern}': the factor of '{{{text}}}' must be at least 1.");
            return new Term(m.Groups[2].Value, scale, offset);
        }

        public int? Solve(int value)
        {
            int shifted = value - Offset;
            if (shifted < 0 || shifted % Scale != 0) return null;
            return shifted / Scale;
        }
    }
}
