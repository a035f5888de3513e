using Cnn.MLNet.Export;
using Microsoft.ML;

namespace Cnn.MLNet.Persistence;

public static partial class CnnPipelineFile
{
    /// <summary>
    /// Whether <paramref name="path"/> is an existing file marked read-only, which <c>Save</c> does not replace unless
    /// <c>overwriteReadOnly</c> is set: check it before long work, as <c>cnn train</c> does before its first epoch.
    /// </summary>
    /// <param name="path">The file a model would be saved to.</param>
    public static bool IsReadOnly(string path) => AtomicFile.IsReadOnly(path);

    /// <summary>
    /// Reads the pipeline saved at <paramref name="pipelinePath"/> and writes it as a plain ML.NET model (ML.NET's own transformers
    /// with the network as ONNX, <see cref="MLNetExport"/>) to <paramref name="outputPath"/>, which <c>mlContext.Model.Load</c>
    /// reads in a process without TorchSharp.
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="pipelinePath">A pipeline saved by <see cref="Save"/> or <c>cnn train</c>.</param>
    /// <param name="outputPath">The ML.NET model zip to write (through a temporary file: never left half-written).</param>
    /// <param name="options">Export options; null for the defaults.</param>
    /// <returns>The converted pipeline (its model, input schema, class names and preprocessing).</returns>
    /// <exception cref="FileNotFoundException">The pipeline file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a pipeline, is damaged, or has no CNN classifier stage.</exception>
    /// <exception cref="NotSupportedException">The pipeline cannot be expressed in ML.NET's own transformers (the message says why).</exception>
    public static MLNetPipeline ExportForMLNet(MLContext mlContext, string pipelinePath, string outputPath, MLNetExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentException.ThrowIfNullOrEmpty(pipelinePath);
        ArgumentException.ThrowIfNullOrEmpty(outputPath);
        options?.Validate();
        var model = Load(mlContext, pipelinePath, out var inputSchema);
        try
        {
            if (!Stages(model).OfType<Scoring.CnnClassifierTransformer>().Any())
                throw new InvalidDataException($"'{pipelinePath}' holds no CNN classifier stage; save models with 'cnn train'.");
            var plain = MLNetExport.ToOnnxPipeline(mlContext, model, inputSchema, options);
            plain.Save(mlContext, outputPath);
            return plain;
        }
        finally
        {
            foreach (var stage in Stages(model).OfType<IDisposable>()) stage.Dispose();
        }
    }
}
