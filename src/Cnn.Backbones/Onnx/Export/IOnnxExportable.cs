namespace Cnn.Backbones.Onnx.Export;

/// <summary>
/// A module that writes its own eval-mode forward pass as ONNX nodes. Our modules implement it next to their <c>forward</c>;
/// TorchSharp's built-in modules are written by <see cref="OnnxExportContext.Emit"/> itself.
/// </summary>
internal interface IOnnxExportable
{
    /// <summary>Writes the module's eval-mode forward pass and returns the name of its output value.</summary>
    /// <param name="context">The graph being written; <see cref="OnnxExportContext.Emit"/> writes child modules.</param>
    /// <param name="input">Name of the input value.</param>
    string ExportOnnx(OnnxExportContext context, string input);
}
