using System.Collections.Concurrent;
using System.Text.Json;
using Cnn.Backbones.Models;
using Cnn.Tests.Shared;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// Runs <c>torchvision_reference.py</c> (copied next to the test assembly) to generate the model references at test time:
/// one process dumps the architecture of every spec of <see cref="ModelCases.Specs"/>; parity fixtures of the small models are
/// made together by one process and shared until the test process exits, the others are made per test and deleted after it.
/// </summary>
internal static class ModelReference
{
    /// <summary>Models up to this many parameters get shared fixtures (at most ~120 MB of weights each).</summary>
    private const long SharedFixtureParameters = 30_000_000;

    private static readonly string ScriptPath = Path.Combine(AppContext.BaseDirectory, "Models", "Reference", "torchvision_reference.py");
    private static readonly Lazy<ArchitectureReport> Architectures = new(LoadArchitectures);
    private static readonly ConcurrentDictionary<string, Lazy<ReferenceFixture>> Shared = new();
    private static readonly Lazy<bool> SharedBatch = new(GenerateSharedBatch);

    /// <summary>The reference architecture of a spec (any spec of <see cref="ModelCases.Specs"/>).</summary>
    public static ArchitectureDump Architecture(string spec) =>
        Architectures.Value.Models.TryGetValue(spec, out var dump) ? dump : throw new KeyNotFoundException($"No reference architecture for '{spec}'.");

    /// <summary>torchvision's builders with IMAGENET1K_V1 weights, by the torchvision module that defines them.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> TorchvisionFamilies => Architectures.Value.Families;

    /// <summary>
    /// Whether a parity case's fixture is shared (made once with the others in one process, kept until exit) rather than made
    /// for one test: small models, and those a second test loads (a ViT's resampling).
    /// </summary>
    public static bool IsShared(ParityCase c) => c.Parameters <= SharedFixtureParameters || (c.Spec.IsPlain && c.Spec.Quirks.ResampleSize is not null);

    /// <summary>
    /// The eval-mode fixture of a parity case: shared ones from the common batch (do not dispose), others freshly made (the
    /// caller disposes it, which deletes the files).
    /// </summary>
    public static ReferenceFixture Fixture(ParityCase c, out bool owned)
    {
        owned = !IsShared(c);
        if (owned) return Generate([EvalJob(c)])[0];
        _ = SharedBatch.Value;
        return Shared[Key(c.Spec.Spec, c.Size, "eval")].Value;
    }

    /// <summary>A shared fixture by spec, size and mode (<c>"eval"</c>, or <c>"train"</c> for the auxiliary heads' outputs).</summary>
    public static ReferenceFixture Fixture(string spec, int size, string mode = "eval")
    {
        if (mode == "eval")
        {
            var c = new ParityCase(new ModelSpec(spec), size, 2);
            if (IsShared(c) && ModelCases.Parity.Any(p => p.Id == c.Id)) _ = SharedBatch.Value;
        }
        return Shared.GetOrAdd(Key(spec, size, mode), _ => new Lazy<ReferenceFixture>(() =>
        {
            var job = mode == "eval" ? EvalJob(new ParityCase(new ModelSpec(spec), size, 2)) : new ParityJob(spec, size, 2, mode, null);
            return Generate([job])[0];
        })).Value;
    }

    private static string Key(string spec, int size, string mode) => $"{spec}@{size}/{mode}";

    private static bool GenerateSharedBatch()
    {
        var cases = ModelCases.Parity.Where(IsShared).ToArray();
        var fixtures = Generate(cases.Select(EvalJob).ToArray());
        for (int i = 0; i < cases.Length; i++)
        {
            var fixture = fixtures[i];
            Shared.TryAdd(Key(cases[i].Spec.Spec, cases[i].Size, "eval"), new Lazy<ReferenceFixture>(() => fixture));
        }
        return true;
    }

    /// <summary>The job of an eval-mode case: our model's stage modules and classifier tell the script where to hook.</summary>
    private static ParityJob EvalJob(ParityCase c)
    {
        using var model = c.Spec.CreateOnMeta();
        var resample = c.Spec.IsPlain && c.Spec.Quirks.ResampleSize is { } size && model is VisionTransformer vit
            ? new ResampleJob(size, vit.Architecture.PatchSize)
            : null;
        return new ParityJob(c.Spec.Spec, c.Size, c.Batch, "eval", resample)
        {
            StageModules = model.FeatureInfo.Select(f => f.ModuleName).ToArray(),
            Classifier = model.PretrainedConfig.Classifier,
        };
    }

    private static IReadOnlyList<ReferenceFixture> Generate(IReadOnlyList<ParityJob> jobs)
    {
        var folders = jobs.Select(_ => new TempDirectory()).ToArray();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { foreach (var f in folders) f.Dispose(); };
        using var jobFile = new TempDirectory();
        var payload = jobs.Select((j, i) => new Dictionary<string, object?>
        {
            ["spec"] = j.Spec, ["size"] = j.Size, ["batch"] = j.Batch, ["mode"] = j.Mode, ["out"] = folders[i].Path,
            ["stage_modules"] = j.StageModules, ["classifier"] = j.Classifier,
            ["resample"] = j.Resample is { } r ? new Dictionary<string, int> { ["size"] = r.Size, ["patch"] = r.Patch } : null,
        });
        File.WriteAllText(jobFile.File("jobs.json"), JsonSerializer.Serialize(payload));
        RunScript("parity", jobFile.File("jobs.json"));
        return folders.Select(f => ReferenceFixture.Open(f.Path)).ToArray();
    }

    private static ArchitectureReport LoadArchitectures()
    {
        using var jobFile = new TempDirectory();
        File.WriteAllText(jobFile.File("specs.json"), JsonSerializer.Serialize(ModelCases.Specs.Select(s => s.Spec)));
        using var doc = JsonDocument.Parse(RunScript("architecture", jobFile.File("specs.json")));
        var models = doc.RootElement.GetProperty("models").EnumerateObject().ToDictionary(e => e.Name, e => ArchitectureDump.Parse(e.Value));
        var families = doc.RootElement.GetProperty("families").EnumerateObject()
            .ToDictionary(e => e.Name, e => (IReadOnlyList<string>)e.Value.EnumerateArray().Select(n => n.GetString()!).ToArray());
        return new ArchitectureReport(models, families);
    }

    /// <summary>Mean, standard deviation, minimum and maximum of a million samples of PyTorch's <c>trunc_normal_</c> per case.</summary>
    public static IReadOnlyList<(double Mean, double Std, double Min, double Max)> TruncatedNormalStatistics(IReadOnlyList<(double Mean, double Std, double A, double B)> cases)
    {
        using var jobFile = new TempDirectory();
        File.WriteAllText(jobFile.File("cases.json"), JsonSerializer.Serialize(cases.Select(c => new[] { c.Mean, c.Std, c.A, c.B })));
        using var doc = JsonDocument.Parse(RunScript("trunc_normal", jobFile.File("cases.json")));
        return doc.RootElement.EnumerateArray()
            .Select(e => (e.GetProperty("mean").GetDouble(), e.GetProperty("std").GetDouble(), e.GetProperty("min").GetDouble(), e.GetProperty("max").GetDouble()))
            .ToArray();
    }

    private static string RunScript(string command, string jobsPath) => ReferencePython.Run(File.ReadAllText(ScriptPath), command, jobsPath);

    private sealed record ArchitectureReport(IReadOnlyDictionary<string, ArchitectureDump> Models, IReadOnlyDictionary<string, IReadOnlyList<string>> Families);

    private sealed record ResampleJob(int Size, int Patch);

    private sealed record ParityJob(string Spec, int Size, int Batch, string Mode, ResampleJob? Resample)
    {
        public IReadOnlyList<string> StageModules { get; init; } = [];
        public string? Classifier { get; init; }
    }
}
