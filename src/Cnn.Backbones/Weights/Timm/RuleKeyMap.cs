using Cnn.Backbones.Models;
using Cnn.Backbones.Weights.Catalog;
using static TorchSharp.torch;

namespace Cnn.Backbones.Weights.Timm;

/// <summary>
/// A key map written as data: top-level <see cref="Rules"/> (the stem, the head) and <see cref="Blocks"/> (repeated blocks with
/// their kinds), each a pair of key patterns with index variables and an optional reshape. Every key must be placed by exactly
/// one rule; a key no rule places, or two keys that would get the same name, is an error naming the keys
/// (<see cref="CheckpointKeyMapException"/>). Keys are matched in either direction with the same rules.
/// </summary>
internal sealed class RuleKeyMap : ICheckpointKeyMap
{
    /// <summary>Creates a map.</summary>
    /// <param name="name">What the map converts, for messages and grouping (e.g. <c>timm efficientnet</c>).</param>
    /// <param name="rules">Top-level rules, tried in order (the first match wins).</param>
    /// <param name="blocks">Block rules, tried before the top-level rules, in order.</param>
    public RuleKeyMap(string name, IEnumerable<KeyRule> rules, IEnumerable<BlockRule>? blocks = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Name = name;
        Rules = rules.ToArray();
        Blocks = (blocks ?? []).ToArray();
    }

    private RuleKeyMap(string name) : this(name, [])
    {
        IsIdentity = true;
    }

    /// <summary>
    /// A map for a foreign layout whose keys are this library's (timm's ResNets, DenseNets, Inception v3): nothing is renamed,
    /// <see cref="IsForeignLayout"/> is always false; <see cref="BatchNormEps"/> and <see cref="CheckpointOptions"/> may still apply.
    /// </summary>
    /// <param name="name">What the map converts, e.g. <c>timm resnet</c>.</param>
    /// <param name="checkpointOptions">See <see cref="CheckpointOptions"/>; null for none.</param>
    public static RuleKeyMap Identity(string name, Func<ModelOptions, ModelOptions>? checkpointOptions = null) =>
        new(name) { CheckpointOptions = checkpointOptions };

    /// <summary>What the map converts (e.g. <c>timm efficientnet</c>).</summary>
    public string Name { get; }

    /// <summary>True when the foreign keys are this library's own (<see cref="Identity"/>).</summary>
    public bool IsIdentity { get; }

    /// <summary>Top-level rules, in order.</summary>
    public IReadOnlyList<KeyRule> Rules { get; }

    /// <summary>Block rules, in order.</summary>
    public IReadOnlyList<BlockRule> Blocks { get; }

    /// <summary>
    /// The BatchNorm epsilon of the foreign library's network when it differs from this library's for the architecture (timm's
    /// 1e-5 for MobileNetV3 and EfficientNet-B5+/V2, where torchvision's is 1e-3); a model that loads such a checkpoint takes it,
    /// so it computes what the checkpoint's own network computes. Null where both agree.
    /// </summary>
    public double? BatchNormEps { get; init; }

    /// <summary>
    /// The creation options a model needs to compute what the foreign network computes (e.g. timm's Inception v3 has no
    /// auxiliary head and no input transform), applied to the caller's options; null where none are needed.
    /// </summary>
    public Func<ModelOptions, ModelOptions>? CheckpointOptions { get; init; }

    /// <summary>The options <paramref name="options"/> with <see cref="CheckpointOptions"/> applied.</summary>
    /// <param name="options">The caller's options.</param>
    public ModelOptions AdaptOptions(ModelOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return CheckpointOptions?.Invoke(options) ?? options;
    }

    /// <inheritdoc />
    /// <remarks>
    /// True when some key is a foreign key that is not also one of this library's (for VGG both layouts share the
    /// <c>features.*</c> keys; only the head differs). Always false for an <see cref="Identity"/> map.
    /// </remarks>
    public bool IsForeignLayout(IReadOnlyCollection<string> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        return !IsIdentity && keys.Any(k => Recognises(k, KeyMapSide.Foreign) && !Recognises(k, KeyMapSide.Ours));
    }

    /// <inheritdoc />
    /// <exception cref="CheckpointKeyMapException">A key no rule places, or two keys that would get the same name.</exception>
    public StateDict ToOurs(StateDict foreign) => Convert(foreign, KeyMapSide.Foreign);

    /// <inheritdoc />
    /// <exception cref="CheckpointKeyMapException">A key no rule places, or two keys that would get the same name.</exception>
    public StateDict ToForeign(StateDict ours) => Convert(ours, KeyMapSide.Ours);

    /// <summary>The key <paramref name="ours"/> would have in the foreign layout, or null when no rule places it alone.</summary>
    /// <param name="ours">A key in this library's layout.</param>
    public string? ForeignKey(string ours) => Plan([ours], KeyMapSide.Ours, out _, out _).FirstOrDefault().Target;

    /// <inheritdoc />
    public override string ToString() => Name;

    private StateDict Convert(StateDict source, KeyMapSide from)
    {
        ArgumentNullException.ThrowIfNull(source);
        var keys = source.Keys.ToArray();
        List<string> problems = [];
        HashSet<string> reported = [];
        var plan = IsIdentity
            ? keys.Select(k => (Source: k, Target: (string?)k, Transform: (TensorTransform?)null)).ToArray()
            : Plan(keys, from, out problems, out reported);
        if (!IsIdentity)
        {
            // Keys of a block that matches none of its layouts are reported with the block, not one by one.
            var unplaced = plan.Where(p => p.Target is null && !reported.Contains(p.Source)).Select(p => p.Source).ToArray();
            if (unplaced.Length > 0 || problems.Count > 0)
                throw new CheckpointKeyMapException(Name, from == KeyMapSide.Foreign ? "timm" : "this library's", unplaced, problems);
            var clash = plan.GroupBy(p => p.Target, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
            if (clash is not null)
                throw new CheckpointKeyMapException(Name, from == KeyMapSide.Foreign ? "timm" : "this library's", [],
                    [$"'{string.Join("' and '", clash.Select(p => p.Source))}' would all become '{clash.Key}'"]);
        }
        var result = new StateDict();
        try
        {
            foreach (var (key, target, transform) in plan)
            {
                var tensor = source[key];
                var converted = transform is null ? tensor.alias()
                    : from == KeyMapSide.Foreign ? transform.ToOurs(tensor, key) : transform.ToForeign(tensor, key);
                result.Add(target!, converted);
            }
            foreach (var (k, v) in source.Metadata) result.Metadata[k] = v;
        }
        catch
        {
            result.Dispose();
            throw;
        }
        return result;
    }

    /// <summary>
    /// For each key (in order) its target key and transform; a null target is a key no rule places. Blocks that match none of
    /// their layouts are described in <paramref name="problems"/> and their keys listed in <paramref name="reported"/>.
    /// </summary>
    private (string Source, string? Target, TensorTransform? Transform)[] Plan(IReadOnlyList<string> keys, KeyMapSide from,
        out List<string> problems, out HashSet<string> reported)
    {
        problems = [];
        reported = new HashSet<string>(StringComparer.Ordinal);
        var plan = new (string Source, string? Target, TensorTransform? Transform)[keys.Count];
        // Keys inside blocks, grouped by block instance (the block rule and the scope's text), in order of first key.
        var instances = new Dictionary<(BlockRule Rule, string Scope), List<(int Index, string Inner, IReadOnlyDictionary<string, int> Bindings)>>();
        for (int i = 0; i < keys.Count; i++)
        {
            plan[i] = (keys[i], null, null);
            bool inBlock = false;
            foreach (var block in Blocks)
            {
                if (block.Enter(keys[i], from) is not { } entered) continue;
                if (!instances.TryGetValue((block, entered.Scope), out var members))
                    instances[(block, entered.Scope)] = members = [];
                members.Add((i, entered.Inner, entered.Bindings));
                inBlock = true;
                break;
            }
            if (inBlock) continue;
            foreach (var rule in Rules)
            {
                if (rule.Translate(keys[i], from, BlockRule.Empty) is { } target)
                {
                    plan[i] = (keys[i], target, rule.Transform);
                    break;
                }
            }
        }
        foreach (var ((block, scope), members) in instances)
        {
            var bindings = members[0].Bindings;
            var targetScope = block.Scope(from.Other()).Render(bindings);
            var layout = ChooseLayout(block, members.Select(m => m.Inner).ToArray(), from);
            if (layout is null || targetScope is null)
            {
                problems.Add($"block '{scope}' (keys {StateDict.Preview(members.Select(m => m.Inner), 8)}) matches none of its layouts " +
                             $"({string.Join(", ", block.Layouts.Select(l => l.Name))})");
                foreach (var member in members) reported.Add(keys[member.Index]);
                continue;
            }
            foreach (var (index, inner, _) in members)
            {
                foreach (var rule in layout.Rules)
                {
                    if (rule.Translate(inner, from, bindings) is { } target)
                    {
                        plan[index] = (keys[index], targetScope.Length == 0 ? target : targetScope + "." + target, rule.Transform);
                        break;
                    }
                }
            }
        }
        return plan;
    }

    /// <summary>The layout that places every key of a block with the fewest unused rules (the first such), or null.</summary>
    private static BlockLayout? ChooseLayout(BlockRule block, IReadOnlyList<string> rests, KeyMapSide from)
    {
        BlockLayout? best = null;
        int bestUnused = int.MaxValue;
        foreach (var layout in block.Layouts)
        {
            var used = new bool[layout.Rules.Count];
            bool placesAll = true;
            foreach (var rest in rests)
            {
                int r = FirstMatch(layout.Rules, rest, from);
                if (r < 0)
                {
                    placesAll = false;
                    break;
                }
                used[r] = true;
            }
            if (!placesAll) continue;
            int unused = used.Count(u => !u);
            if (unused < bestUnused)
            {
                best = layout;
                bestUnused = unused;
            }
        }
        return best;
    }

    private static int FirstMatch(IReadOnlyList<KeyRule> rules, string key, KeyMapSide from)
    {
        for (int r = 0; r < rules.Count; r++)
            if (rules[r].Translate(key, from, BlockRule.Empty) is not null) return r;
        return -1;
    }

    /// <summary>Whether some rule of <paramref name="side"/> could place <paramref name="key"/>.</summary>
    private bool Recognises(string key, KeyMapSide side)
    {
        foreach (var block in Blocks)
        {
            if (block.Enter(key, side) is { } entered && block.Layouts.Any(l => FirstMatch(l.Rules, entered.Inner, side) >= 0))
                return true;
        }
        return FirstMatch(Rules, key, side) >= 0;
    }
}

/// <summary>A state dict could not be converted between layouts: keys no rule places, or keys that would clash. Nothing was converted.</summary>
public sealed class CheckpointKeyMapException : Exception
{
    internal CheckpointKeyMapException(string map, string layout, IReadOnlyList<string> unplaced, IReadOnlyList<string> problems)
        : base($"The {map} key map cannot convert this state dict from {layout} layout: " +
               string.Join("; ", (unplaced.Count > 0 ? [$"{unplaced.Count} key(s) match no rule ({StateDict.Preview(unplaced, 8)})"] : Array.Empty<string>()).Concat(problems)) +
               ". The checkpoint is not of this architecture (or not in this layout): check the model name and variant, or load it with the layout's own keys.")
    {
        UnplacedKeys = unplaced;
    }

    /// <summary>The keys no rule places.</summary>
    public IReadOnlyList<string> UnplacedKeys { get; }
}
