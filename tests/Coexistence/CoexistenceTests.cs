using System.Reflection;
using Cnn.MLNet;
using Cnn.MLNet.Data;
using Cnn.MLNet.Persistence;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.TorchSharp;
using TorchSharp;

namespace Cnn.Coexistence.Tests;

/// <summary>
/// Cnn.MLNet beside Microsoft.ML.TorchSharp 0.24.0 in one application: NuGet resolves the one TorchSharp both use to 0.107
/// (Microsoft.ML.TorchSharp asks for >= 0.102.7), both assemblies load in one process, and a Cnn.MLNet fit runs there.
/// </summary>
[TestClass]
public sealed class CoexistenceTests
{
    private static readonly Assembly MlNetTorchSharp = typeof(TorchSharpCatalog).Assembly;

    [TestMethod]
    public void BothUseTheOneTorchSharp107()
    {
        var torchSharp = typeof(torch).Assembly;
        Assert.AreEqual(new Version(0, 107, 0, 0), torchSharp.GetName().Version, "the TorchSharp that restore chose");
        var asked = MlNetTorchSharp.GetReferencedAssemblies().Single(a => a.Name == "TorchSharp");
        Assert.IsLessThan(new Version(0, 107, 0, 0), asked.Version!, $"Microsoft.ML.TorchSharp was built against {asked.Version}");
        // Its reference binds to the assembly already loaded, not to a second copy.
        Assert.AreSame(torchSharp, Assembly.Load(asked));
        Assert.AreEqual(1, AppDomain.CurrentDomain.GetAssemblies().Count(a => a.GetName().Name == "TorchSharp"));
    }

    /// <summary>
    /// Every non-generic method of Microsoft.ML.TorchSharp is compiled against TorchSharp 0.107: the JIT resolves each TorchSharp
    /// member it calls, so an API that 0.107 removed or changed fails here with MissingMethodException or TypeLoadException,
    /// as it would when the method first runs in an application.
    /// </summary>
    [TestMethod]
    public void MicrosoftMlTorchSharpCompilesAgainstTorchSharp107ExceptTheObjectDetector()
    {
        int prepared = 0;
        var failures = new List<string>();
        foreach (var type in MlNetTorchSharp.GetTypes().Where(t => !t.ContainsGenericParameters))
            foreach (var method in type.GetMethods(BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly)
                         .Cast<MethodBase>().Concat(type.GetConstructors(BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic)))
            {
                if (method.IsAbstract || method.ContainsGenericParameters || method.GetMethodBody() is null) continue;
                try
                {
                    System.Runtime.CompilerServices.RuntimeHelpers.PrepareMethod(method.MethodHandle);
                    prepared++;
                }
                catch (Exception ex) when (ex is MissingMemberException or TypeLoadException or BadImageFormatException)
                {
                    failures.Add($"{type.FullName}.{method.Name}: {ex.GetType().Name}: {ex.Message}");
                }
            }
        Console.WriteLine($"{prepared} methods of Microsoft.ML.TorchSharp compiled against TorchSharp {typeof(torch).Assembly.GetName().Version}");
        Assert.IsGreaterThan(500, prepared);
        // The one incompatibility, which the README reports: the object detector (AutoFormerV2, ObjectDetection trainer) calls
        // functional.interpolate(Tensor, long[], double[], InterpolationMode, bool?, bool), which TorchSharp 0.107 no longer has.
        // Text classification, sentence similarity, NER and question answering compile. A change here means the README is stale.
        var unexpected = failures.Where(f => !(f.StartsWith("Microsoft.ML.TorchSharp.AutoFormerV2.", StringComparison.Ordinal) && f.Contains("functional.interpolate"))).ToList();
        Assert.IsEmpty(unexpected, string.Join("\n", unexpected));
        CollectionAssert.AreEquivalent(new[] { "AutoFormerV2Block.forward", "FPN.forward" },
            failures.Select(f => f[..f.IndexOf(':')].Replace("Microsoft.ML.TorchSharp.AutoFormerV2.", "")).ToList(), string.Join("\n", failures));
    }

    [TestMethod]
    public void ACnnFitRunsBesideAMicrosoftMlTorchSharpPipeline()
    {
        var ml = new MLContext(seed: 1);
        // Microsoft.ML.TorchSharp's text classifier in a pipeline (its Fit downloads pretrained weights, so it is not fitted here).
        var textPipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.TextClassification(sentence1ColumnName: "Text"));
        Assert.IsNotNull(textPipeline);

        // A Cnn.MLNet fit in the same process: LeNet-5 on 8 Fashion-MNIST images of two classes, saved, loaded and scored.
        var source = FashionMnist.Load(FashionMnistSplit.Train); // Debian's dataset-fashion-mnist (CI installs it); the sample lives in the cnn tool
        var images = new ImageDataset(source.Samples.Where(s => s.Label < 2).ToList(), source.ClassNames).TakePerClass(4);
        var data = ImageDataViews.ToDataView(ml, images);
        var options = new CnnTrainerOptions { Model = new() { InChannels = 1, ImageSize = 32 }, CropPct = 1.0, Epochs = 2, BatchSize = 4, Augment = false };
        var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(CnnTrainer.LeNet5(options)).Fit(data);
        string path = Path.Combine(Path.GetTempPath(), $"coexistence-{Guid.NewGuid():N}.zip");
        try
        {
            CnnPipelineFile.Save(ml, model, data.Schema, path);
            var loaded = CnnPipelineFile.Load(ml, path, out _);
            var scores = loaded.Transform(data).GetColumn<float[]>("Score").ToList();
            Assert.HasCount(images.Count, scores);
            foreach (var row in scores)
            {
                Assert.HasCount(2, row);
                Assert.AreEqual(1.0, row.Sum(), 1e-4, "softmax probabilities");
            }
            foreach (var stage in CnnPipelineFile.Stages(loaded).Concat(CnnPipelineFile.Stages(model))) (stage as IDisposable)?.Dispose();
        }
        finally
        {
            File.Delete(path);
        }
    }

}
