using Cnn.Backbones.Onnx.Export;

namespace Cnn.Backbones.Models;

/// <summary>The ONNX export of a backbone's eval-mode forward pass, written piece by piece as <see cref="Backbone.forward"/> runs.</summary>
public abstract partial class Backbone : IOnnxExportable
{
    string IOnnxExportable.ExportOnnx(OnnxExportContext context, string input) => ExportOnnx(context, input);

    /// <summary>
    /// Writes the eval-mode <see cref="forward"/>: every feature stage (<see cref="ExportStage"/>), <see cref="ExportFinishFeatures"/>,
    /// then <see cref="ExportHead"/> (not in features-only mode). Dropout and stochastic depth are the identity in eval mode.
    /// </summary>
    /// <param name="context">The graph being written.</param>
    /// <param name="input">The image batch [N, C, H, W].</param>
    internal string ExportOnnx(OnnxExportContext context, string input)
    {
        ArgumentNullException.ThrowIfNull(context);
        var h = input;
        for (int i = 0; i < FeatureInfo.Count; i++) h = ExportStage(i, context, h);
        h = ExportFinishFeatures(context, h);
        if (context.FeatureShape is { } shape) context.SetShape(h, shape);
        return FeaturesOnly ? h : ExportHead(context, h);
    }

    /// <summary>Writes feature stage <paramref name="index"/> as <see cref="ForwardStage"/> computes it.</summary>
    /// <param name="index">Stage index.</param>
    /// <param name="context">The graph being written.</param>
    /// <param name="x">The previous stage's output (the image for stage 0).</param>
    /// <exception cref="NotSupportedException">The family has no ONNX export (the default).</exception>
    private protected virtual string ExportStage(int index, OnnxExportContext context, string x) =>
        throw new NotSupportedException($"ONNX export is not implemented for {GetType().FullName} ({GetName()}): override {nameof(ExportStage)}.");

    /// <summary>Writes <see cref="FinishFeatures"/>: nothing by default.</summary>
    /// <param name="context">The graph being written.</param>
    /// <param name="lastStage">The last stage's output.</param>
    private protected virtual string ExportFinishFeatures(OnnxExportContext context, string lastStage) => lastStage;

    /// <summary>Writes <see cref="ForwardPool"/>: global average pooling and flatten by default.</summary>
    /// <param name="context">The graph being written.</param>
    /// <param name="features">The output of the features.</param>
    private protected virtual string ExportPool(OnnxExportContext context, string features)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Flatten(context.GlobalAveragePool(features));
    }

    /// <summary>Writes <see cref="ForwardHead"/> in eval mode: <see cref="ExportPool"/>, then the classifier.</summary>
    /// <param name="context">The graph being written.</param>
    /// <param name="features">The output of the features.</param>
    private protected virtual string ExportHead(OnnxExportContext context, string features)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Emit(GetClassifier(), ExportPool(context, features));
    }
}
