using Cnn.MLNet.Data;
using Microsoft.ML;

namespace Cnn.MLNet.Tests.Training;

/// <summary>Small, balanced slices of the embedded Fashion-MNIST subset as ML.NET data views (PNG bytes + class name).</summary>
internal static class FashionMnistFixture
{
    private static readonly Lazy<FashionMnistDataset> Train = new(() => Cnn.Cli.Data.FashionMnistSample.Load(FashionMnistSplit.Train));
    private static readonly Lazy<FashionMnistDataset> Test = new(() => Cnn.Cli.Data.FashionMnistSample.Load(FashionMnistSplit.Test));

    /// <summary>The first <paramref name="perClass"/> images of each class (of <paramref name="classes"/> classes).</summary>
    public static ImageDataset Slice(bool train, int perClass, int classes = 10)
    {
        var source = train ? Train.Value : Test.Value;
        var samples = source.Samples.Where(s => s.Label < classes).GroupBy(s => s.Label).SelectMany(g => g.Take(perClass)).ToList();
        // Interleave classes so any prefix is balanced.
        samples = samples.Select((s, i) => (s, i)).OrderBy(t => t.i % perClass).ThenBy(t => t.s.Label).Select(t => t.s).ToList();
        return new ImageDataset(samples, source.ClassNames);
    }

    public static IDataView View(MLContext ml, bool train, int perClass, int classes = 10) => ImageDataViews.ToDataView(ml, Slice(train, perClass, classes));
}
