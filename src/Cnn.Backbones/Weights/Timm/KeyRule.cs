namespace Cnn.Backbones.Weights.Timm;

/// <summary>
/// One line of a key map: a module path (or whole key) in this library's layout and the same in the foreign layout, e.g.
/// <c>features.{s+1}.{b}.block.0.0</c> ⇔ <c>blocks.{s}.{b}.conv_pw</c>. A key matches a side when it equals the pattern or is the
/// pattern followed by one more name (<c>.weight</c>, <c>.running_var</c>, …), which is carried over unchanged.
/// </summary>
/// <param name="Ours">The pattern in this library's layout.</param>
/// <param name="Foreign">The pattern in the foreign (timm) layout.</param>
/// <param name="Transform">How the tensors change between the layouts (a reshape), or null when they are the same.</param>
internal sealed record KeyRule(KeyPattern Ours, KeyPattern Foreign, TensorTransform? Transform = null)
{
    /// <summary>Parses <c>"ours = foreign"</c>, e.g. <c>"features.0.0 = conv_stem"</c>.</summary>
    /// <param name="line">The rule.</param>
    /// <param name="transform">Tensor transform, or null.</param>
    /// <exception cref="FormatException">The line is not two patterns separated by <c>=</c>.</exception>
    public static KeyRule Parse(string line, TensorTransform? transform = null)
    {
        ArgumentNullException.ThrowIfNull(line);
        var sides = line.Split('=');
        if (sides.Length != 2 || sides[0].Trim().Length == 0 || sides[1].Trim().Length == 0)
            throw new FormatException($"Key rule '{line}' must be 'ours = foreign', e.g. 'features.0.0 = conv_stem'.");
        return new KeyRule(new KeyPattern(sides[0].Trim()), new KeyPattern(sides[1].Trim()), transform);
    }

    /// <summary>Parses each line with <see cref="Parse"/>.</summary>
    /// <param name="lines">Rules as <c>"ours = foreign"</c>.</param>
    public static IReadOnlyList<KeyRule> ParseAll(params string[] lines) => lines.Select(l => Parse(l)).ToArray();

    /// <summary>The pattern of one side.</summary>
    internal KeyPattern Side(KeyMapSide side) => side == KeyMapSide.Ours ? Ours : Foreign;

    /// <summary>
    /// Matches <paramref name="key"/> against <paramref name="side"/>'s pattern (exactly, or the pattern and one more name) and
    /// writes the other side's key; null when it does not match.
    /// </summary>
    internal string? Translate(string key, KeyMapSide side, IReadOnlyDictionary<string, int> bindings)
    {
        var source = Side(side);
        var target = Side(side.Other());
        if (source.Match(key, bindings) is { } exact) return target.Render(exact);
        int dot = key.LastIndexOf('.');
        if (dot <= 0) return null;
        if (source.Match(key[..dot], bindings) is not { } module) return null;
        return target.Render(module) is { } rendered ? (rendered.Length == 0 ? key[(dot + 1)..] : rendered + key[dot..]) : null;
    }

    /// <inheritdoc />
    public override string ToString() => $"{Ours} = {Foreign}";
}

/// <summary>
/// A repeated block (an inverted residual, a transformer layer) whose keys are mapped together: <see cref="OursScope"/> and
/// <see cref="ForeignScope"/> name the block on each side, and the keys inside it follow the first of <see cref="Layouts"/>
/// that places every one of them (using the fewest unused rules), so blocks whose children are numbered differently on one
/// side (with or without expansion or squeeze-excitation) are told apart by the keys they have.
/// </summary>
/// <param name="OursScope">The block's module path in this library's layout, e.g. <c>features.{s+1}.{b}.block</c>.</param>
/// <param name="ForeignScope">The same block in the foreign layout, e.g. <c>blocks.{s}.{b}</c>.</param>
/// <param name="Layouts">The kinds of block, each with rules relative to the scopes.</param>
internal sealed record BlockRule(KeyPattern OursScope, KeyPattern ForeignScope, IReadOnlyList<BlockLayout> Layouts)
{
    /// <summary>Creates a block rule from <c>"ours = foreign"</c> scopes.</summary>
    /// <param name="scopes">The scopes, e.g. <c>"features.{s+1}.{b}.block = blocks.{s}.{b}"</c>.</param>
    /// <param name="layouts">The kinds of block.</param>
    public static BlockRule Parse(string scopes, params BlockLayout[] layouts)
    {
        var rule = KeyRule.Parse(scopes);
        return new BlockRule(rule.Ours, rule.Foreign, layouts);
    }

    /// <summary>
    /// Converts a flat block index on one side into a (stage, block) pair on the other (torchvision's MobileNets number their
    /// blocks <c>features.1..N</c>, timm's <c>blocks.{stage}.{block}</c>); null when both sides use the same indices.
    /// </summary>
    public FlatIndex? Flat { get; init; }

    internal KeyPattern Scope(KeyMapSide side) => side == KeyMapSide.Ours ? OursScope : ForeignScope;

    /// <summary>
    /// Whether <paramref name="key"/> lies inside this block on <paramref name="side"/>: the bindings, the scope's text and the
    /// rest of the key; null otherwise.
    /// </summary>
    internal (IReadOnlyDictionary<string, int> Bindings, string Scope, string Inner)? Enter(string key, KeyMapSide side)
    {
        var scope = Scope(side);
        int components = scope.Text.Split('.').Length;
        int at = -1;
        for (int i = 0; i < components; i++)
        {
            at = key.IndexOf('.', at + 1);
            if (at < 0) return null;
        }
        string prefix = key[..at];
        if (scope.Match(prefix, Empty) is not { } bindings) return null;
        if (Flat is not null)
        {
            if (Flat.Complete(bindings) is not { } completed) return null;
            bindings = completed;
        }
        return (bindings, prefix, key[(at + 1)..]);
    }

    internal static readonly IReadOnlyDictionary<string, int> Empty = new Dictionary<string, int>(StringComparer.Ordinal);
}

/// <summary>One kind of block: its rules, relative to the block's scopes.</summary>
/// <param name="Name">A short name for messages (e.g. <c>inverted residual with SE</c>).</param>
/// <param name="Rules">The rules.</param>
internal sealed record BlockLayout(string Name, IReadOnlyList<KeyRule> Rules)
{
    /// <summary>Creates a layout from <c>"ours = foreign"</c> lines.</summary>
    /// <param name="name">A short name for messages.</param>
    /// <param name="rules">The rules, relative to the block's scopes.</param>
    public static BlockLayout Parse(string name, params string[] rules) => new(name, KeyRule.ParseAll(rules));
}

/// <summary>
/// A flat block index (<see cref="FlatVariable"/>, numbered from <see cref="First"/>) equal to the (<see cref="StageVariable"/>,
/// <see cref="BlockVariable"/>) pair of stages of <see cref="StageLengths"/> blocks each.
/// </summary>
/// <param name="FlatVariable">The flat index's variable.</param>
/// <param name="StageVariable">The stage's variable.</param>
/// <param name="BlockVariable">The block-in-stage variable.</param>
/// <param name="First">The flat index of stage 0's block 0.</param>
/// <param name="StageLengths">Blocks per stage.</param>
internal sealed record FlatIndex(string FlatVariable, string StageVariable, string BlockVariable, int First, IReadOnlyList<int> StageLengths)
{
    /// <summary>The bindings with the missing side computed; null when an index is out of range.</summary>
    internal IReadOnlyDictionary<string, int>? Complete(IReadOnlyDictionary<string, int> bindings)
    {
        var result = new Dictionary<string, int>(bindings, StringComparer.Ordinal);
        if (bindings.TryGetValue(FlatVariable, out int flat))
        {
            int offset = flat - First;
            if (offset < 0) return null;
            for (int s = 0; s < StageLengths.Count; s++)
            {
                if (offset < StageLengths[s])
                {
                    result[StageVariable] = s;
                    result[BlockVariable] = offset;
                    return result;
                }
                offset -= StageLengths[s];
            }
            return null;
        }
        if (bindings.TryGetValue(StageVariable, out int stage) && bindings.TryGetValue(BlockVariable, out int block))
        {
            if (stage >= StageLengths.Count || block >= StageLengths[stage]) return null;
            result[FlatVariable] = First + StageLengths.Take(stage).Sum() + block;
            return result;
        }
        return result;
    }
}

/// <summary>The two layouts a key map converts between.</summary>
internal enum KeyMapSide
{
    /// <summary>This library's layout.</summary>
    Ours,

    /// <summary>The foreign (timm) layout.</summary>
    Foreign,
}

internal static class KeyMapSideExtensions
{
    public static KeyMapSide Other(this KeyMapSide side) => side == KeyMapSide.Ours ? KeyMapSide.Foreign : KeyMapSide.Ours;
}
