using Cnn.Backbones.Models;
using Cnn.Backbones.Onnx;
using Cnn.Backbones.Onnx.Export;
using Cnn.Backbones.Tests.Models;
using Cnn.Tests.Shared;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Onnx;

/// <summary>
/// What the export tests run: the smallest variant of every registered family (so a new family is covered without a test edit),
/// or every registered model when <c>CNN_EXPORT_ALL=1</c>; each at its test size from <see cref="ModelQuirks"/>, with weights
/// made non-trivial (BatchNorm statistics, zero-initialised heads, ConvNeXt's 1e-6 layer scale) so that a wrong node shows.
/// </summary>
internal static class OnnxExportCases
{
    /// <summary>Set to 1 to export every registered model instead of one per family.</summary>
    public const string AllVariable = "CNN_EXPORT_ALL";

    /// <summary>The specs to export.</summary>
    public static IReadOnlyList<ModelSpec> Specs()
    {
        var all = ModelCases.Names;
        if (Environment.GetEnvironmentVariable(AllVariable) == "1") return all;
        return FamilyCases.Smallest.Select(d => all.Single(s => s.Name == d.Name)).ToArray();
    }

    /// <summary>Builds <paramref name="spec"/> (10 classes) with seeded, non-trivial weights, in eval mode.</summary>
    public static Backbone Create(ModelSpec spec)
    {
        torch.manual_seed(11);
        var model = spec.Create(o => o with { NumClasses = 10 });
        Randomize(model);
        model.eval();
        return model;
    }

    /// <summary>Randomises what initialisation leaves trivial: BatchNorm affine and running statistics, all-zero tensors, layer scales.</summary>
    public static void Randomize(nn.Module model)
    {
        using var noGrad = no_grad();
        foreach (var (_, module) in model.named_modules())
        {
            if (module is not BatchNorm bn) continue;
            bn.weight!.uniform_(0.5, 1.5);
            bn.bias!.uniform_(-0.2, 0.2);
            bn.running_mean!.uniform_(-0.3, 0.3);
            bn.running_var!.uniform_(0.5, 2.0);
        }
        foreach (var (name, parameter) in model.named_parameters())
        {
            if (name.EndsWith("layer_scale", StringComparison.Ordinal)) parameter.uniform_(0.1, 0.5);
            else if (parameter.abs().max().item<float>() == 0) parameter.normal_(0, 0.02);
        }
    }

    /// <summary>A seeded random batch for <paramref name="result"/>'s input at batch size <paramref name="batch"/>.</summary>
    public static Tensor Input(OnnxExportResult result, int batch, int seed = 5) =>
        randn([batch, .. result.InputShape.Skip(1)], generator: new Generator((ulong)seed));

    /// <summary>ONNX Runtime's output of the exported model on <paramref name="input"/>.</summary>
    public static Tensor RunOnnx(OnnxExportResult result, Tensor input) =>
        OnnxRuntimeRunner.Run(Google.Protobuf.MessageExtensions.ToByteArray(result.Model), OnnxExporter.InputName, input, [result.OutputName])[0];

    /// <summary>Largest |a − b| relative to the largest |b|.</summary>
    public static double RelativeDifference(Tensor ours, Tensor reference)
    {
        using var scope = NewDisposeScope();
        Assert.IsTrue(ours.shape.SequenceEqual(reference.shape), $"shapes [{string.Join(", ", ours.shape)}] and [{string.Join(", ", reference.shape)}]");
        return (ours.cpu() - reference).abs().max().item<float>() / Math.Max(reference.abs().max().item<float>(), float.Epsilon);
    }

    /// <summary>Runs <c>onnx.checker.check_model(path, full_check=True)</c> on every file in one Python call; returns its report.</summary>
    public static string Check(IEnumerable<string> paths)
    {
        const string script = """
            import sys, onnx
            failed = []
            for path in sys.argv[1:]:
                try:
                    onnx.checker.check_model(path, full_check=True)
                    print("ok", path)
                except Exception as e:
                    failed.append(path)
                    print("FAILED", path, str(e).replace("\n", " "))
            sys.exit(1 if failed else 0)
            """;
        return ReferencePython.Run(script, [.. paths]);
    }
}
