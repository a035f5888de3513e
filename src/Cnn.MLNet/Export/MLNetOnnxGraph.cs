using Google.Protobuf;
using Onnx;

namespace Cnn.MLNet.Export;

/// <summary>
/// Turns an exported classifier graph (<c>NormalizeInside</c>, <c>probabilities</c> output) into the graph ML.NET's
/// <c>ApplyOnnxModel</c> runs inside the plain pipeline: input <see cref="PixelsInput"/>, ML.NET's <c>ExtractPixels</c> of RGB
/// planes at the resized size (0–255 floats), centre-cropped to the network's input size and, for a grey network, turned into
/// PIL's luminance inside the graph; outputs the probabilities (named as the score column, with the class names as ML.NET slot
/// names) and the predicted class index (a vector of one int64: ML.NET's OnnxTransformer cannot read ONNX scalars).
/// </summary>
internal static class MLNetOnnxGraph
{
    /// <summary>Name of the graph input fed by <c>ExtractPixels</c> (also the ML.NET column's name).</summary>
    public const string PixelsInput = "__cnn_pixels";

    /// <summary>Name of the predicted class index output (also the ML.NET column's name).</summary>
    public const string IndexOutput = "__cnn_class_index";

    /// <summary>Rewrites <paramref name="model"/> in place (a copy is taken) and returns the ONNX bytes.</summary>
    /// <param name="model">The exported graph: input <c>input</c> [batch, C, S, S] of 0–255 pixels, output <paramref name="probabilitiesName"/>.</param>
    /// <param name="probabilitiesName">The exported graph's probability output.</param>
    /// <param name="channels">The network's channels (1: PIL luminance of the RGB planes; 3: the planes as they are).</param>
    /// <param name="inputSize">The network's input size S.</param>
    /// <param name="resizedSize">The size of the pixels fed in (S / crop_pct), centre-cropped to S in the graph.</param>
    /// <param name="scoreColumn">Name of the probability output (the ML.NET score column).</param>
    /// <param name="classNames">Class names in output order: ML.NET slot names of the score column.</param>
    public static byte[] Build(ModelProto model, string probabilitiesName, int channels, int inputSize, int resizedSize, string scoreColumn,
        IReadOnlyList<string> classNames)
    {
        var proto = model.Clone();
        var graph = proto.Graph;
        string networkInput = graph.Input.Single().Name;
        graph.Input.Clear();
        graph.Input.Add(Tensor(PixelsInput, TensorProto.Types.DataType.Float, [null, 3, resizedSize, resizedSize]));
        var nodes = new List<NodeProto>();
        string x = PixelsInput;
        if (resizedSize != inputSize)
        {
            // torchvision's CenterCrop offset: round((resized - size) / 2), half to even.
            long offset = (long)Math.Round((resizedSize - inputSize) / 2.0);
            x = Node(nodes, "Slice", [x, Longs(graph, "crop_starts", offset, offset), Longs(graph, "crop_ends", offset + inputSize, offset + inputSize), Longs(graph, "crop_axes", 2, 3)], "__cnn_cropped");
        }
        if (channels == 1)
        {
            // PIL's convert("L"): (R·19595 + G·38470 + B·7471 + 32768) >> 16. Every product and sum is an integer below 2^24, so
            // float32 holds it exactly and the floor of the quotient by 2^16 is PIL's value.
            graph.Initializer.Add(Floats("__cnn_luma_weights", [19595f, 38470f, 7471f], 1, 3, 1, 1));
            graph.Initializer.Add(Floats("__cnn_luma_bias", [32768f], 1));
            graph.Initializer.Add(Floats("__cnn_luma_scale", [1f / 65536f]));
            x = Node(nodes, "Conv", [x, "__cnn_luma_weights", "__cnn_luma_bias"], "__cnn_luma_sum");
            x = Node(nodes, "Mul", [x, "__cnn_luma_scale"], "__cnn_luma_scaled");
            x = Node(nodes, "Floor", [x], "__cnn_luma");
        }
        nodes.Add(new NodeProto { OpType = "Identity", Name = "__cnn_network_input", Input = { x }, Output = { networkInput } });
        for (int i = 0; i < nodes.Count; i++) graph.Node.Insert(i, nodes[i]);

        // ML.NET runs one row at a time: [1, K] flattened to [K] gives the column type Vector<Single, K> (not Vector<Single, 1, K>).
        graph.Node.Add(new NodeProto { OpType = "Reshape", Name = "__cnn_score", Input = { probabilitiesName, Longs(graph, "flat", -1) }, Output = { scoreColumn } });
        var argMax = new NodeProto { OpType = "ArgMax", Name = "__cnn_argmax", Input = { probabilitiesName }, Output = { "__cnn_argmax" } };
        argMax.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
        argMax.Attribute.Add(new AttributeProto { Name = "keepdims", Type = AttributeProto.Types.AttributeType.Int, I = 0 });
        graph.Node.Add(argMax);
        graph.Node.Add(new NodeProto { OpType = "Identity", Name = "__cnn_index", Input = { "__cnn_argmax" }, Output = { IndexOutput } });

        // ML.NET's OnnxTransformer reads slot names of output column C from the 'keys_strings' of a node named mlnet.C.SlotNames
        // (what ML.NET's own ONNX converter writes): a LabelEncoder over the class names, whose output nothing reads.
        var names = new TensorProto { Name = "__cnn_class_names", DataType = (int)TensorProto.Types.DataType.String };
        names.Dims.Add(classNames.Count);
        names.StringData.AddRange(classNames.Select(ByteString.CopyFromUtf8));
        graph.Initializer.Add(names);
        var slotNames = new NodeProto { OpType = "LabelEncoder", Domain = "ai.onnx.ml", Name = $"mlnet.{scoreColumn}.SlotNames", Input = { "__cnn_class_names" }, Output = { "__cnn_slot_names" } };
        var keys = new AttributeProto { Name = "keys_strings", Type = AttributeProto.Types.AttributeType.Strings };
        keys.Strings.AddRange(classNames.Select(ByteString.CopyFromUtf8));
        var values = new AttributeProto { Name = "values_int64s", Type = AttributeProto.Types.AttributeType.Ints };
        values.Ints.AddRange(Enumerable.Range(0, classNames.Count).Select(i => (long)i));
        slotNames.Attribute.Add(keys);
        slotNames.Attribute.Add(values);
        slotNames.Attribute.Add(new AttributeProto { Name = "default_int64", Type = AttributeProto.Types.AttributeType.Int, I = -1 });
        graph.Node.Add(slotNames);
        if (!proto.OpsetImport.Any(o => o.Domain == "ai.onnx.ml"))
            proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "ai.onnx.ml", Version = 2 });

        graph.Output.Clear();
        graph.Output.Add(Tensor(scoreColumn, TensorProto.Types.DataType.Float, [classNames.Count]));
        // ML.NET runs one row at a time: a vector of one int64 (its ONNX scalar outputs do not work).
        graph.Output.Add(Tensor(IndexOutput, TensorProto.Types.DataType.Int64, [null]));
        return proto.ToByteArray();
    }

    private static string Node(List<NodeProto> nodes, string op, string[] inputs, string output)
    {
        nodes.Add(new NodeProto { OpType = op, Name = output, Input = { inputs }, Output = { output } });
        return output;
    }

    private static string Longs(GraphProto graph, string name, params long[] values)
    {
        name = "__cnn_" + name;
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        tensor.Dims.Add(values.Length);
        tensor.Int64Data.AddRange(values);
        graph.Initializer.Add(tensor);
        return name;
    }

    private static TensorProto Floats(string name, float[] values, params long[] dims)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        tensor.Dims.AddRange(dims.Length == 0 ? [] : dims);
        tensor.FloatData.AddRange(values);
        return tensor;
    }

    private static ValueInfoProto Tensor(string name, TensorProto.Types.DataType type, long?[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d is { } v ? new TensorShapeProto.Types.Dimension { DimValue = v } : new TensorShapeProto.Types.Dimension { DimParam = "batch" });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }
}
