using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;

namespace Cnn.Backbones.Weights.Download;

/// <summary>
/// A model on the Hugging Face hub as timm and OpenCLIP name it: <c>hf-hub:timm/resnet50.a1_in1k</c>, optionally pinned to a
/// branch, tag or commit with <c>@revision</c> (<c>hf-hub:timm/resnet50.a1_in1k@main</c>; default <see cref="DefaultRevision"/>).
/// </summary>
public sealed partial record HubModelId
{
    /// <summary>The prefix of hub names (timm's and OpenCLIP's spelling).</summary>
    public const string Prefix = "hf-hub:";

    /// <summary>The revision asked for when a name does not give one.</summary>
    public const string DefaultRevision = "main";

    /// <summary>Creates an id from a repository and a revision.</summary>
    /// <param name="repository">The repository, <c>organization/name</c> (or a bare legacy <c>name</c>), e.g. <c>timm/resnet50.a1_in1k</c>.</param>
    /// <param name="revision">A branch, tag or commit hash; default <see cref="DefaultRevision"/>.</param>
    /// <exception cref="FormatException">The repository or revision is not one the hub accepts.</exception>
    public HubModelId(string repository, string revision = DefaultRevision)
    {
        ArgumentNullException.ThrowIfNull(repository);
        ArgumentNullException.ThrowIfNull(revision);
        if (RepositoryProblem(repository) is { } problem)
            throw new FormatException($"'{repository}' is not a Hugging Face hub repository: {problem}. Expected 'organization/name', e.g. 'timm/resnet50.a1_in1k'.");
        if (revision.Length == 0 || revision.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)) || revision.Contains("..", StringComparison.Ordinal) ||
            revision.StartsWith('/') || revision.EndsWith('/') || revision.Contains('\\'))
            throw new FormatException($"'{revision}' is not a revision of a Hugging Face hub repository: use a branch, tag or commit hash such as 'main'.");
        Repository = repository;
        Revision = revision;
    }

    /// <summary>The repository, <c>organization/name</c>.</summary>
    public string Repository { get; }

    /// <summary>The branch, tag or commit hash.</summary>
    public string Revision { get; }

    /// <summary>True when <paramref name="name"/> starts with <see cref="Prefix"/>, i.e. names a hub model rather than a catalog entry or a file.</summary>
    /// <param name="name">A weights name.</param>
    public static bool IsHubName([NotNullWhen(true)] string? name) => name is not null && name.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>Parses <c>hf-hub:organization/name[@revision]</c>.</summary>
    /// <param name="name">The name, e.g. <c>hf-hub:timm/resnet50.a1_in1k</c>.</param>
    /// <exception cref="FormatException">The name is not of that form; the message shows the form and an example.</exception>
    public static HubModelId Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return TryParse(name, out var id, out string? problem) ? id : throw new FormatException(problem);
    }

    /// <summary>Parses <c>hf-hub:organization/name[@revision]</c>, returning false instead of throwing.</summary>
    /// <param name="name">The name.</param>
    /// <param name="id">The id, when the name is well formed.</param>
    public static bool TryParse([NotNullWhen(true)] string? name, [NotNullWhen(true)] out HubModelId? id) => TryParse(name, out id, out _);

    private static bool TryParse(string? name, [NotNullWhen(true)] out HubModelId? id, out string? problem)
    {
        id = null;
        const string Form = "expected 'hf-hub:<organization>/<name>[@<revision>]', e.g. 'hf-hub:timm/resnet50.a1_in1k' or 'hf-hub:timm/resnet50.a1_in1k@main'";
        if (!IsHubName(name))
        {
            problem = $"'{name}' is not a Hugging Face hub name: it does not start with '{Prefix}'; {Form}.";
            return false;
        }
        string rest = name[Prefix.Length..];
        int at = rest.IndexOf('@');
        string repository = at < 0 ? rest : rest[..at];
        string revision = at < 0 ? DefaultRevision : rest[(at + 1)..];
        if (RepositoryProblem(repository) is { } repositoryProblem)
        {
            problem = $"'{name}' is not a Hugging Face hub name: {repositoryProblem}; {Form}.";
            return false;
        }
        try
        {
            id = new HubModelId(repository, revision);
        }
        catch (FormatException)
        {
            problem = $"'{name}' is not a Hugging Face hub name: '{revision}' after '@' is not a revision (a branch, tag or commit hash); {Form}.";
            return false;
        }
        problem = null;
        return true;
    }

    /// <summary>The folder of this repository in the hub cache, as huggingface_hub names it: <c>models--organization--name</c>.</summary>
    public string CacheFolderName => "models--" + Repository.Replace("/", "--", StringComparison.Ordinal);

    /// <summary>The name in the form <see cref="Parse"/> reads; the revision is shown unless it is the default.</summary>
    public override string ToString() => Prefix + Repository + (Revision == DefaultRevision ? "" : "@" + Revision);

    // huggingface_hub's validate_repo_id: [namespace/]name of word characters, '-' and '.', at most 96 characters, no '--' or '..'.
    private static string? RepositoryProblem(string repository)
    {
        if (repository.Length == 0) return "the repository is empty";
        if (repository.Length > 96) return $"the repository name has {repository.Length} characters, more than the hub's 96";
        if (!RepositoryPattern().IsMatch(repository))
            return $"'{repository}' is not 'organization/name' of letters, digits, '-', '_' and '.'";
        if (repository.Contains("--", StringComparison.Ordinal) || repository.Contains("..", StringComparison.Ordinal))
            return $"'{repository}' contains '--' or '..', which the hub does not allow";
        return null;
    }

    [GeneratedRegex(@"^([A-Za-z0-9_][A-Za-z0-9_.\-]*[A-Za-z0-9_]/|[A-Za-z0-9_]/)?([A-Za-z0-9_][A-Za-z0-9_.\-]*[A-Za-z0-9_]|[A-Za-z0-9_])$")]
    private static partial Regex RepositoryPattern();
}
