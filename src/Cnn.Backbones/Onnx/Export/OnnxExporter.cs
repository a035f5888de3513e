using System.Globalization;
using System.Reflection;
using System.Text.Json;
using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Onnx.Export;

/// <summary>
/// Exports a <see cref="Backbone"/> with its weights as an ONNX model (opset 17): input <c>input</c>, float32 NCHW with a
/// symbolic batch axis (and, on request, symbolic height and width); output <c>logits</c> (or <c>probabilities</c>, or
/// <c>features</c> for a model without classifier); the architecture, input size, mean/std, normalisation and class labels in
/// <c>metadata_props</c>. The graph is written from the model's own modules (<see cref="IOnnxExportable"/>), then, unless
/// <see cref="OnnxExportOptions.Verify"/> is off, run in ONNX Runtime on a random batch of two and compared with the model.
/// </summary>
public static class OnnxExporter
{
    /// <summary>The ONNX opset of exported graphs (the first with <c>LayerNormalization</c>).</summary>
    public const int Opset = 17;

    /// <summary>Name of the graph's input.</summary>
    public const string InputName = "input";

    /// <summary>Metadata key prefix of everything the exporter records.</summary>
    public const string MetadataPrefix = "cnn.";

    /// <summary>Exports <paramref name="model"/> (its eval-mode forward pass; its training mode is restored afterwards).</summary>
    /// <param name="model">The model, on any device.</param>
    /// <param name="options">Export options; null for the defaults.</param>
    /// <returns>The ONNX model and, when verified, how closely ONNX Runtime reproduces the model.</returns>
    /// <exception cref="NotSupportedException">A module cannot be exported (the message names it), or the options ask for what the architecture cannot do.</exception>
    /// <exception cref="OnnxExportException">The exported graph does not reproduce the model in ONNX Runtime.</exception>
    public static OnnxExportResult Export(Backbone model, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new OnnxExportOptions();
        options.Validate();
        Native.TorchRuntime.EnsureLoaded();
        bool training = model.training;
        // The export is of the float32 network, and it is verified against float32 outputs whatever the model computes in.
        using var float32 = model.OverrideCompute(Compute.ComputeSettings.Float32);
        model.eval();
        try
        {
            using var noGrad = no_grad();
            var config = model.PretrainedConfig;
            int size = options.ImageSize ?? (model is VisionTransformer vit ? vit.ImageSize : config.InputSize.Height);
            long[] shape = [1, model.InChannels, size, options.ImageSize ?? (model is VisionTransformer ? size : config.InputSize.Width)];
            var mean = options.Mean ?? PerChannel(config.Mean, model.InChannels);
            var std = options.Std ?? PerChannel(config.Std, model.InChannels);
            if (mean.Count != model.InChannels)
                throw new ArgumentException($"{model.GetName()} takes {model.InChannels} channel(s) but {mean.Count} mean/std values were given.", nameof(options));
            if (options.Output == OnnxExportOutput.Probabilities && (model.FeaturesOnly || model.NumClasses == 0))
                throw new NotSupportedException($"{model.GetName()} has no classifier, so it has no probabilities to output; export its features (the default output).");

            var context = new OnnxExportContext(model, shape, options.DynamicSize) { FeatureShape = options.DynamicSize ? null : FeatureShape(model, shape) };
            var proto = Build(model, context, options, mean, std, out string outputName);
            var (difference, verifiedShape) = options.Verify ? Verify(model, proto, outputName, shape, options, mean, std) : (double.NaN, Array.Empty<long>());
            return new OnnxExportResult(proto, outputName, shape, difference, verifiedShape);
        }
        finally
        {
            model.train(training);
        }
    }

    private static long[] FeatureShape(Backbone model, long[] shape)
    {
        using var scope = NewDisposeScope();
        var device = model.parameters().FirstOrDefault()?.device ?? CPU;
        return model.ForwardFeatures(zeros(shape, device: device)).shape;
    }

    private static ModelProto Build(Backbone model, OnnxExportContext context, OnnxExportOptions options, IReadOnlyList<double> mean, IReadOnlyList<double> std,
        out string outputName)
    {
        var builder = context.Builder;
        string x = InputName;
        if (options.NormalizeInside)
        {
            // (x / scale − mean) / std = x · 1/(scale · std) − mean/std, per channel.
            long[] perChannel = [1, model.InChannels, 1, 1];
            var multiplier = builder.Floats(std.Select(s => (float)(1 / (options.PixelScale * s))).ToArray(), perChannel);
            var offset = builder.Floats(mean.Select((m, i) => (float)(-m / std[i])).ToArray(), perChannel);
            x = context.Add(context.Mul(x, multiplier), offset);
        }
        var y = model.ExportOnnx(context, x);
        bool classifier = !model.FeaturesOnly && model.NumClasses > 0;
        if (options.Output == OnnxExportOutput.Probabilities) y = context.Op("Softmax", [y], OnnxGraphBuilder.Int("axis", 1));
        outputName = options.Output == OnnxExportOutput.Probabilities ? "probabilities" : classifier ? "logits" : "features";
        var graph = builder.Graph;
        graph.Node.Add(new NodeProto { OpType = "Identity", Name = "output", Input = { y }, Output = { outputName } });

        string[] spatial = options.DynamicSize ? ["height", "width"] : [];
        graph.Input.Add(ValueInfo(InputName, [("batch", 0), (null, model.InChannels), (spatial.ElementAtOrDefault(0), context.InputShape[2]), (spatial.ElementAtOrDefault(1), context.InputShape[3])]));
        graph.Output.Add(ValueInfo(outputName, OutputDims(model, context)));

        var proto = new ModelProto
        {
            IrVersion = 8,
            ProducerName = "Cnn.MLNet",
            ProducerVersion = typeof(OnnxExporter).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "",
            Graph = graph,
        };
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        foreach (var (key, value) in Metadata(model, context, options, mean, std))
            proto.MetadataProps.Add(new StringStringEntryProto { Key = MetadataPrefix + key, Value = value });
        return proto;
    }

    private static (string? Param, long Value)[] OutputDims(Backbone model, OnnxExportContext context)
    {
        if (!model.FeaturesOnly) return [("batch", 0), (null, model.NumClasses > 0 ? model.NumClasses : model.NumFeatures)];
        if (context.FeatureShape is { } f) return [("batch", 0), .. f.Skip(1).Select(d => ((string?)null, d))];
        return [("batch", 0), (null, model.NumFeatures), ("feature_height", 0), ("feature_width", 0)];
    }

    private static ValueInfoProto ValueInfo(string name, IEnumerable<(string? Param, long Value)> dims)
    {
        var shape = new TensorShapeProto();
        foreach (var (param, value) in dims)
            shape.Dim.Add(param is null ? new TensorShapeProto.Types.Dimension { DimValue = value } : new TensorShapeProto.Types.Dimension { DimParam = param });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    private static IEnumerable<(string Key, string Value)> Metadata(Backbone model, OnnxExportContext context, OnnxExportOptions options,
        IReadOnlyList<double> mean, IReadOnlyList<double> std)
    {
        static string Join(IEnumerable<double> values) => string.Join(",", values.Select(v => v.ToString("R", CultureInfo.InvariantCulture)));
        yield return ("architecture", options.Architecture ?? model.GetName());
        yield return ("input_size", string.Join(",", context.InputShape.Skip(1).Select(d => d.ToString(CultureInfo.InvariantCulture))));
        yield return ("dynamic_size", options.DynamicSize ? "true" : "false");
        yield return ("mean", Join(mean));
        yield return ("std", Join(std));
        yield return ("normalization", options.NormalizeInside
            ? string.Create(CultureInfo.InvariantCulture, $"inside: input pixels in [0, {options.PixelScale:R}]")
            : "outside: input is (pixel / 255 - mean) / std");
        yield return ("pixel_scale", options.NormalizeInside ? options.PixelScale.ToString("R", CultureInfo.InvariantCulture) : "1");
        yield return ("output", options.Output == OnnxExportOutput.Probabilities ? "probabilities" : "logits");
        yield return ("num_classes", model.NumClasses.ToString(CultureInfo.InvariantCulture));
        if (options.ClassLabels is { } labels)
        {
            if (model.NumClasses > 0 && labels.Count != model.NumClasses)
                throw new ArgumentException($"{labels.Count} class labels were given for a model with {model.NumClasses} classes.", nameof(options));
            yield return ("class_labels", JsonSerializer.Serialize(labels));
        }
        foreach (var (key, value) in options.Metadata ?? new Dictionary<string, string>()) yield return (key, value);
    }

    /// <summary>ONNX Runtime on a seeded random batch of two against the eval-mode model; returns the relative difference.</summary>
    private static (double Difference, long[] Shape) Verify(Backbone model, ModelProto proto, string outputName, long[] shape, OnnxExportOptions options,
        IReadOnlyList<double> mean, IReadOnlyList<double> std)
    {
        using var scope = NewDisposeScope();
        long[] batch = [2, .. shape.Skip(1)];
        var generator = new Generator(20260101);
        var device = model.parameters().FirstOrDefault()?.device ?? CPU;
        Tensor graphInput, modelInput;
        if (options.NormalizeInside)
        {
            graphInput = rand(batch, generator: generator).Times(options.PixelScale);
            var m = tensor(mean.Select(v => (float)v).ToArray()).reshape(1, -1, 1, 1);
            var s = tensor(std.Select(v => (float)v).ToArray()).reshape(1, -1, 1, 1);
            modelInput = (graphInput.DividedBy(options.PixelScale) - m) / s;
        }
        else
        {
            graphInput = modelInput = randn(batch, generator: generator);
        }
        var ours = model.call(modelInput.to(device));
        if (options.Output == OnnxExportOutput.Probabilities) ours = ours.softmax(1);
        ours = ours.cpu().to_type(ScalarType.Float32);
        Tensor theirs;
        try
        {
            theirs = OnnxRuntimeRunner.Run(proto.ToByteArray(), InputName, graphInput, [outputName])[0];
        }
        catch (OnnxRuntimeException ex)
        {
            throw new OnnxExportException($"ONNX Runtime could not run the exported {model.GetName()} graph: {ex.Message.ReplaceLineEndings(" ")}", ex);
        }
        if (!ours.shape.SequenceEqual(theirs.shape))
            throw new OnnxExportException($"The exported {model.GetName()} graph gives an output of shape [{string.Join(", ", theirs.shape)}] in ONNX Runtime; the model gives [{string.Join(", ", ours.shape)}].");
        double scale = theirs.abs().max().item<float>();
        double diff = (ours - theirs).abs().max().item<float>();
        double relative = diff / Math.Max(scale, double.Epsilon);
        if (!(diff <= options.Tolerance * scale))
            throw new OnnxExportException(string.Create(CultureInfo.InvariantCulture,
                $"The exported {model.GetName()} graph does not reproduce the model in ONNX Runtime: on a random input, max |difference| {diff:G4} " +
                $"against a scale of {scale:G4} (relative {relative:G3} > {options.Tolerance:G3})."));
        return (relative, batch);
    }

    private static IReadOnlyList<double> PerChannel(IReadOnlyList<double> values, int channels) =>
        values.Count == channels ? values
        : channels == 1 ? [values.Average()]
        : Enumerable.Range(0, channels).Select(i => values[i % values.Count]).ToArray();
}

/// <summary>An exported model.</summary>
/// <param name="Model">The ONNX model.</param>
/// <param name="OutputName">Name of the graph's output (<c>logits</c>, <c>probabilities</c> or <c>features</c>).</param>
/// <param name="InputShape">The input shape the graph was written for ([1, C, H, W]; the batch axis is symbolic in the graph).</param>
/// <param name="RelativeDifference">Largest |model − ONNX Runtime| relative to the largest output value on the verification batch; NaN when not verified.</param>
/// <param name="VerifiedShape">Shape of the verification batch (empty when not verified).</param>
public sealed record OnnxExportResult(ModelProto Model, string OutputName, IReadOnlyList<long> InputShape, double RelativeDifference, IReadOnlyList<long> VerifiedShape)
{
    /// <summary>Writes the model to <paramref name="path"/> (creating its folder; through a temporary file, so a failed write leaves no partial file).</summary>
    /// <param name="path">The <c>.onnx</c> file.</param>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        string temporary = full + ".tmp-" + Guid.NewGuid().ToString("N");
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllBytes(temporary, Model.ToByteArray());
            File.Move(temporary, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
    }
}

/// <summary>The exported graph does not reproduce the model in ONNX Runtime.</summary>
public sealed class OnnxExportException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What differs.</param>
    /// <param name="inner">The ONNX Runtime error, if any.</param>
    public OnnxExportException(string message, Exception? inner = null) : base(message, inner) { }
}
