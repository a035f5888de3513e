using System.Text.RegularExpressions;
using Cnn.Backbones.Models;

namespace Cnn.Backbones.Weights.Timm;

/// <summary>
/// A model family's timm facts, declared in its <c>Models/&lt;Family&gt;.Timm.cs</c> companion file: which timm names each
/// architecture has and how timm's keys map onto ours (<see cref="ModelDefinition.TimmNames"/>, <see cref="ModelDefinition.TimmKeyMap"/>),
/// and which timm variants look alike but are other networks. <see cref="ModelRegistry"/> applies them to every definition the
/// family lists.
/// </summary>
internal interface ITimmFamily
{
    /// <summary>The definition with its timm names and key map set (unchanged when timm has no such architecture).</summary>
    /// <param name="definition">A definition the family lists.</param>
    ModelDefinition WithTimm(ModelDefinition definition);

    /// <summary>timm variants of this family that are not the same network as any of ours, with the reason.</summary>
    IReadOnlyList<TimmRefusal> TimmRefusals { get; }
}

/// <summary>timm model names (a regular expression over the whole name) that are refused, and why.</summary>
/// <param name="Pattern">A regular expression matched against the whole timm name (case-insensitive).</param>
/// <param name="Reason">Why the network differs from ours, and what to use instead.</param>
public sealed record TimmRefusal(string Pattern, string Reason)
{
    private readonly Regex _regex = new("^(?:" + Pattern + ")$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

    /// <summary>Whether <paramref name="name"/> is refused by this entry (a <c>timm/</c> prefix and a <c>.tag</c> suffix are ignored).</summary>
    /// <param name="name">A timm model name.</param>
    public bool Matches(string name) => _regex.IsMatch(TimmNames.Architecture(name));
}

/// <summary>Helpers for timm model names.</summary>
public static class TimmNames
{
    /// <summary>
    /// The architecture of a timm name: <c>timm/resnet50.a1_in1k</c> → <c>resnet50</c> (the <c>hf-hub:</c> and <c>timm/</c>
    /// prefixes and the pretrained tag after the first dot are dropped).
    /// </summary>
    /// <param name="name">A timm model name, with or without hub prefix and tag.</param>
    public static string Architecture(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        string n = name.Trim();
        if (n.StartsWith("hf-hub:", StringComparison.OrdinalIgnoreCase)) n = n["hf-hub:".Length..];
        if (n.StartsWith("hf_hub:", StringComparison.OrdinalIgnoreCase)) n = n["hf_hub:".Length..];
        if (n.StartsWith("timm/", StringComparison.OrdinalIgnoreCase)) n = n["timm/".Length..];
        int dot = n.IndexOf('.');
        return dot > 0 ? n[..dot] : n;
    }
}
