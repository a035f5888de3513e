using Cnn.MLNet.Data;

namespace Cnn.Cli.Data;

/// <summary>
/// The seeded, class-stratified Fashion-MNIST sample embedded in the <c>cnn</c> tool (1,000 training and 200 test images per
/// class; MIT, Zalando SE: the NOTICE travels with it as the resource <c>Cnn.Cli.FashionMnist.NOTICE.txt</c>). The Cnn.MLNet
/// library carries no data; <c>cnn train</c> and <c>cnn eval</c> fall back to this sample when the full set is not installed.
/// </summary>
public static class FashionMnistSample
{
    private const string ResourcePrefix = "Cnn.Cli.FashionMnist.";

    /// <summary>Loads a split of the sample.</summary>
    public static FashionMnistDataset Load(FashionMnistSplit split)
    {
        string prefix = split == FashionMnistSplit.Train ? "train" : "t10k";
        using var images = Open($"{prefix}-images-idx3-ubyte.gz");
        using var labels = Open($"{prefix}-labels-idx1-ubyte.gz");
        return FashionMnist.FromStreams(split, images, labels, "the cnn tool's embedded sample");
    }

    /// <summary>The sample's licence notice (Fashion-MNIST's MIT licence).</summary>
    public static string Notice()
    {
        using var reader = new StreamReader(Open("NOTICE.txt"));
        return reader.ReadToEnd();
    }

    private static Stream Open(string file) =>
        typeof(FashionMnistSample).Assembly.GetManifestResourceStream(ResourcePrefix + file)
        ?? throw new InvalidOperationException($"The resource '{ResourcePrefix + file}' is missing from the cnn tool: reinstall it.");
}
