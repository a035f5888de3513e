using Cnn.Backbones.Tests.Weights;

namespace Cnn.Backbones.Tests.Onnx;

/// <summary>
/// ONNX fixtures made at test time by the reference Python: Debian's python3-onnx (onnx.helper / numpy_helper) for the reader
/// tests, and torchvision models exported with torch.onnx.export (eval mode, BatchNorm folded) for the importer tests.
/// </summary>
internal static class OnnxReference
{
    /// <summary>Prepended to the ONNX scripts: a one-node model holding given initializers.</summary>
    private const string Helpers = """
        import onnx
        from onnx import helper, numpy_helper, TensorProto

        def save_model(path, initializers):
            graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], initializer=initializers)
            model = helper.make_model(graph, producer_name="cnn-tests", opset_imports=[helper.make_opsetid("", 13)])
            with open(path, "wb") as f:
                f.write(model.SerializeToString())

        """;

    /// <summary>Runs a script with the weights prelude (torch, <c>dump</c>) and the ONNX helpers.</summary>
    public static string Run(string script, params string[] arguments) => WeightsReference.Run(Helpers + script, arguments);

    /// <summary>
    /// Exports torchvision's <paramref name="name"/> (seeded, BatchNorm statistics randomised so folding is not trivial, eval mode)
    /// to <c>model.onnx</c> in <paramref name="folder"/>, with torchvision's output on a fixed input in <c>reference.safetensors</c>
    /// (<c>input</c>, <c>output</c>). <paramref name="kwargs"/> is a Python keyword list for the constructor; <paramref name="prepare"/>
    /// is more Python run on <c>model</c> under <c>torch.no_grad()</c> before the export.
    /// </summary>
    public static void Export(string folder, string name, int size, string kwargs = "", int opset = 13, string prepare = "") =>
        ExportBuilt(folder, "getattr(torchvision.models, name)(**kwargs)", name, size, 3, kwargs, opset, prepare);

    /// <summary>
    /// Exports the reference model of a registry spec as <see cref="Export"/> does, built by the parity tests' reference script
    /// (<c>torchvision_reference.py</c>'s <c>build</c>: torchvision's model, or the script's own builder for a model torchvision
    /// lacks), with <paramref name="channels"/> input channels.
    /// </summary>
    public static void ExportReference(string folder, string spec, int size, int channels) =>
        ExportBuilt(folder, "reference_builder(name)", spec, size, channels, "", 13, "");

    private static void ExportBuilt(string folder, string construct, string name, int size, int channels, string kwargs, int opset, string prepare)
    {
        string script = """
            import importlib.util, os, torchvision
            name, size, out, kwargs = sys.argv[1], int(sys.argv[2]), sys.argv[3], eval("dict(" + sys.argv[4] + ")")
            opset, prepare, channels, script = int(sys.argv[5]), sys.argv[6], int(sys.argv[7]), sys.argv[8]

            def reference_builder(spec):
                loader = importlib.util.spec_from_file_location("torchvision_reference", script)
                module = importlib.util.module_from_spec(loader)
                loader.loader.exec_module(module)
                return module.build(spec)

            torch.manual_seed(0)
            model = CONSTRUCT
            with torch.no_grad():
                for m in model.modules():
                    if isinstance(m, torch.nn.BatchNorm2d):
                        m.weight.uniform_(0.5, 1.5)
                        m.bias.uniform_(-0.2, 0.2)
                        m.running_mean.uniform_(-0.3, 0.3)
                        m.running_var.uniform_(0.5, 2.0)
                exec(prepare)
            model.eval()
            x = torch.randn(2, channels, size, size, generator=torch.Generator().manual_seed(7))
            torch.onnx.export(model, x[:1], out + "/model.onnx", opset_version=opset, do_constant_folding=True,
                              input_names=["input"], output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
            with torch.no_grad():
                y = model(x)
            st_write(out + "/reference.safetensors", {"input": x, "output": y})
            print(len(onnx.load(out + "/model.onnx").graph.initializer))
            """.Replace("CONSTRUCT", construct, StringComparison.Ordinal);
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        string builder = Path.Combine(AppContext.BaseDirectory, "Models", "Reference", "torchvision_reference.py");
        Run(script, name, size.ToString(invariant), folder, kwargs, opset.ToString(invariant), prepare, channels.ToString(invariant), builder);
    }
}
