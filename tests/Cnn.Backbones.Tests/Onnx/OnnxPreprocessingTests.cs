using Cnn.Backbones.Onnx;
using Cnn.Backbones.Weights;
using Cnn.Tests.Shared;

namespace Cnn.Backbones.Tests.Onnx;

[TestClass]
public sealed class OnnxPreprocessingTests
{
    // RGB -> BGR, minus a per-channel mean given as [3, 1, 1], times 1/58 (a Caffe-style preprocessing); then one with a Relu.
    private const string Script = """
        import numpy as np
        out = sys.argv[1]
        def prep(path, extra):
            nodes = [helper.make_node("Split", ["x"], ["r", "g", "b"], axis=1),
                     helper.make_node("Concat", ["b", "g", "r"], ["bgr"], axis=1),
                     helper.make_node("Sub", ["bgr", "mean"], ["centred"]),
                     helper.make_node("Mul", ["centred", "scale"], ["y" if not extra else "scaled"])]
            if extra:
                nodes.append(helper.make_node("Relu", ["scaled"], ["y"], name="clip"))
            graph = helper.make_graph(nodes, "prep", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
                initializer=[numpy_helper.from_array(np.array([104.0, 117.0, 123.0], np.float32).reshape(3, 1, 1), "mean"),
                             numpy_helper.from_array(np.array(1 / 58.0, np.float32), "scale")])
            onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
        prep(out + "/prep.onnx", False)
        prep(out + "/relu.onnx", True)
        """;

    [TestMethod]
    public void Read_ChannelOrderMeanAndScale_AsPretrainedConfig_AndRefusesOtherNodes()
    {
        using var dir = new TempDirectory();
        OnnxReference.Run(Script, dir.Path);
        using var prep = OnnxPreprocessing.Read(dir.File("prep.onnx"));
        CollectionAssert.AreEqual(new[] { 2, 1, 0 }, prep.ChannelOrder.ToArray());
        Assert.AreEqual(1 / 58.0, prep.Scale, 1e-7);

        var config = prep.ToPretrainedConfig(Backbones.Models.ModelRegistry.Get("resnet18"), 255, 0, "test");
        double[] rgb = [123.0 / 255, 117.0 / 255, 104.0 / 255];
        for (int c = 0; c < 3; c++)
        {
            Assert.AreEqual(rgb[c], config.Mean[c], 1e-7, $"mean {c} (in the input's RGB order)");
            Assert.AreEqual(58.0 / 255, config.Std[c], 1e-6, $"std {c}");
        }

        Assert.AreEqual(224, config.InputSize.Height, "per-channel values keep the architecture's input size");

        var ex = Assert.ThrowsExactly<WeightFileException>(() => OnnxPreprocessing.Read(dir.File("relu.onnx")).Dispose());
        StringAssert.Contains(ex.Message, "preprocessing node 'clip' (Relu)");
        StringAssert.Contains(ex.Message, dir.File("relu.onnx"));
    }
}
