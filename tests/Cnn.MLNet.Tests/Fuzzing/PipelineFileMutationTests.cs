using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using Cnn.MLNet.Persistence;
using Cnn.Tests.Shared;
using Microsoft.ML;

namespace Cnn.MLNet.Tests.Fuzzing;

/// <summary>
/// Bounded, seeded mutation test of the pipeline file (<c>model.zip</c>: manifest, ML.NET stages, network.json, network.safetensors,
/// classifier.json) seeded with a real fitted and saved pipeline: every mutant loads or is refused with the documented
/// <see cref="InvalidDataException"/>, within a per-case timeout.
/// </summary>
[TestClass]
public sealed class PipelineFileMutationTests
{
    private static readonly Lazy<byte[]> Seed = new(FuzzSeeds.Pipeline);

    private static void Load(MLContext ml, string path)
    {
        var loaded = CnnPipelineFile.Load(ml, path, out _);
        foreach (var stage in CnnPipelineFile.Stages(loaded)) (stage as IDisposable)?.Dispose();
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public void PipelineFile_MutantsLoadOrAreRefused()
    {
        var ml = new MLContext(seed: 1);
        using var dir = new TempDirectory();
        string path = dir.File("model.zip");
        new MutationFuzz
        {
            Format = "model.zip",
            Seeds = [Seed.Value],
            Cases = 4000,
            Parse = bytes =>
            {
                File.WriteAllBytes(path, bytes);
                Load(ml, path);
            },
            IsDocumented = ex => ex is InvalidDataException,
            // ML.NET's loader copies each stage to memory and reads it; the network's weights are the file's own bytes.
            ManagedBound = n => 64 * n + (64L << 20),
        }.Run();
    }

    /// <summary>What afl-fuzz found (tools/fuzz.sh modelzip), saved under Fuzzing/Regressions: each is refused with the documented exception.</summary>
    [TestMethod]
    public void SavedFindings_AreInvalidData()
    {
        var files = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Fuzzing", "Regressions"), "modelzip-*.bin");
        Assert.IsNotEmpty(files);
        var ml = new MLContext(seed: 1);
        foreach (string file in files)
        {
            var error = Assert.ThrowsExactly<InvalidDataException>(() => Load(ml, file), Path.GetFileName(file));
            StringAssert.Contains(error.Message, file);
        }
    }

    /// <summary>A spec naming a weights file (as a fit's spec may) does not make loading read that file: the weights are the model file's.</summary>
    [TestMethod]
    public void PipelineFile_AWeightsPathInTheSpecIsNotRead()
    {
        using var dir = new TempDirectory();
        string path = dir.File("model.zip"), elsewhere = dir.File("elsewhere.safetensors");
        File.WriteAllText(elsewhere, "not weights");
        File.WriteAllBytes(path, Seed.Value);
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Update))
        {
            var entry = zip.Entries.Single(e => e.FullName.EndsWith("/network.json", StringComparison.Ordinal));
            JsonNode json;
            using (var stream = entry.Open()) json = JsonNode.Parse(stream)!;
            json["spec"]!["model"]!["weightsPath"] = elsewhere;
            string name = entry.FullName;
            entry.Delete();
            using var writer = new StreamWriter(zip.CreateEntry(name).Open());
            writer.Write(json.ToJsonString());
        }
        Load(new MLContext(seed: 1), path);
    }

    // ---- Regression tests: what the mutation run found (each threw an undocumented exception before the fix) ----

    [TestMethod]
    [DataRow("stage0.mlnet.zip", "not a zip", "damaged")] // ML.NET's loader: FormatException
    [DataRow("manifest.json", "{\"format\": ", "damaged")] // JsonException
    [DataRow("manifest.json", "{\"format\": \"cnn-mlnet-pipeline\", \"version\": 1, \"inputSchema\": \"input-schema.mlnet.zip\"}", "lacks")] // NullReferenceException
    public void PipelineFile_ADamagedEntryIsInvalidData(string entry, string content, string expected)
    {
        using var dir = new TempDirectory();
        string path = dir.File("model.zip");
        File.WriteAllBytes(path, Seed.Value);
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Update))
        {
            Assert.IsNotNull(zip.GetEntry(entry), entry);
            zip.GetEntry(entry)!.Delete();
            using var stream = zip.CreateEntry(entry).Open();
            stream.Write(Encoding.UTF8.GetBytes(content));
        }
        var error = Assert.ThrowsExactly<InvalidDataException>(() => Load(new MLContext(seed: 1), path));
        StringAssert.Contains(error.Message, path);
        StringAssert.Contains(error.Message, expected);
    }
}
