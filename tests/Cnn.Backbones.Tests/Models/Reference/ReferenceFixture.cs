using System.Text.Json;
using Cnn.Backbones.Weights;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// Files made by the reference script for one parity job: the seeded model's <c>weights.pth</c> (torch.save), its outputs as
/// safetensors and <c>meta.json</c>. Disposing deletes them; unshared fixtures are disposed by their test, the rest at exit.
/// </summary>
internal sealed class ReferenceFixture : IDisposable
{
    private ReferenceFixture(string directory, JsonElement meta)
    {
        Directory = directory;
        Meta = meta;
    }

    /// <summary>The folder of the files.</summary>
    public string Directory { get; }

    /// <summary>What the script noted besides tensors (e.g. <c>num_stages</c>).</summary>
    public JsonElement Meta { get; }

    /// <summary>The seeded reference weights.</summary>
    public string WeightsPath => Path.Combine(Directory, "weights.pth");

    /// <summary>The reference outputs (<c>input</c>, <c>stage{i}</c>, <c>features</c>, <c>pre_logits</c>, <c>logits</c>, …).</summary>
    public string OutputsPath => Path.Combine(Directory, "outputs.safetensors");

    /// <summary>Number of stage maps the reference wrote.</summary>
    public int StageCount => Meta.GetProperty("num_stages").GetInt32();

    /// <summary>Opens the files the script wrote into <paramref name="directory"/>.</summary>
    public static ReferenceFixture Open(string directory)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "meta.json")));
        return new ReferenceFixture(directory, doc.RootElement.Clone());
    }

    /// <summary>Loads the reference outputs.</summary>
    public StateDict LoadOutputs() => WeightFile.Load(OutputsPath);

    /// <summary>Deletes the files.</summary>
    public void Dispose()
    {
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
    }
}
