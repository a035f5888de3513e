namespace Cnn.Backbones.Onnx;

/// <summary>
/// ML.NET's pretrained ResNet-18 (NuGet <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c>), which a project referencing the package
/// gets in its output folder as <c>DnnImageModels/ResNet18Onnx/ResNet18.onnx</c> with its preprocessing graph
/// <c>DnnImageModels/ResNetPrepOnnx/ResNetPreprocess.onnx</c>: found, and imported as torchvision resnet18 weights.
/// </summary>
public static class MlNetResNet18
{
    /// <summary>The network graph below a <c>DnnImageModels</c> folder.</summary>
    public const string NetworkFile = "ResNet18Onnx/ResNet18.onnx";

    /// <summary>The preprocessing graph below a <c>DnnImageModels</c> folder.</summary>
    public const string PreprocessFile = "ResNetPrepOnnx/ResNetPreprocess.onnx";

    /// <summary>
    /// The two graphs' paths in <paramref name="modelsFolder"/> (default: <c>DnnImageModels</c> beside the application), or null
    /// when either is missing.
    /// </summary>
    /// <param name="modelsFolder">A <c>DnnImageModels</c> folder, or null for the application's.</param>
    public static (string Network, string Preprocess)? Find(string? modelsFolder = null)
    {
        modelsFolder ??= Path.Combine(AppContext.BaseDirectory, "DnnImageModels");
        string network = Path.Combine(modelsFolder, NetworkFile), preprocess = Path.Combine(modelsFolder, PreprocessFile);
        return File.Exists(network) && File.Exists(preprocess) ? (network, preprocess) : null;
    }

    /// <summary>
    /// Imports the graphs (verified against ONNX Runtime, as <see cref="OnnxImporter.ImportWithPreprocessing"/>) and writes the
    /// weights to <paramref name="output"/> as safetensors with their block counts and preprocessing, ready for
    /// <c>ModelOptions.WeightsPath</c>.
    /// </summary>
    /// <param name="output">The safetensors file to write.</param>
    /// <param name="modelsFolder">A <c>DnnImageModels</c> folder, or null for the application's.</param>
    /// <exception cref="FileNotFoundException">The graphs are not there: reference the NuGet package.</exception>
    public static OnnxImportReport ImportTo(string output, string? modelsFolder = null)
    {
        var (network, preprocess) = Find(modelsFolder) ?? throw new FileNotFoundException(
            $"ML.NET's ResNet-18 graphs were not found in '{modelsFolder ?? Path.Combine(AppContext.BaseDirectory, "DnnImageModels")}': " +
            "reference the NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18, which copies them beside the application.");
        using var result = OnnxImporter.ImportWithPreprocessing(preprocess, network, Models.ResNetFamily.Names.ResNet18);
        result.WriteSafeTensors(output, Path.GetFileName(network));
        return result.Report;
    }
}
