using Cnn.Backbones.Compute;
using Cnn.Backbones.Native;
using Cnn.MLNet.Networks;
using Cnn.MLNet.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Tests.Compute;

/// <summary>How precision and memory-format options resolve (float16's loss scaling: <c>Training/LossScalerTests</c>).</summary>
[TestClass]
public sealed class ComputeSelectionTests
{
    [TestMethod]
    public void OptionsResolveToComputeSettingsAndAutoFollowsTheCpu()
    {
        TorchRuntime.EnsureLoaded();
        Assert.AreEqual(ComputeSettings.Float32, ComputeSelection.Resolve(CnnPrecision.Float32, CnnMemoryFormat.Contiguous, CPU, "resnet18", 224).Settings);
        Assert.AreEqual(new ComputeSettings(ScalarType.BFloat16, true),
            ComputeSelection.Resolve(CnnPrecision.BFloat16, CnnMemoryFormat.ChannelsLast, CPU, "resnet18", 28).Settings, "what is asked for is done at any size");
        var (auto, reason) = ComputeSelection.Resolve(CnnPrecision.Auto, CnnMemoryFormat.Auto, CPU, "resnet18", 64);
        Assert.AreEqual(CpuFeatures.HasNativeBFloat16 ? ScalarType.BFloat16 : null, auto.ReducedType, reason);
        Assert.IsTrue(auto.ChannelsLast, reason);
        Assert.IsFalse(ComputeSelection.Resolve(CnnPrecision.Auto, CnnMemoryFormat.Auto, CPU, "vit_b_32", 224).Settings.ChannelsLast);
        Assert.IsFalse(ComputeSelection.Resolve(CnnPrecision.Float32, CnnMemoryFormat.Auto, CPU, "convnext_tiny", 224).Settings.ChannelsLast,
            "convnext trained slower channels-last in float32");
        Assert.IsTrue(ComputeSelection.Resolve(CnnPrecision.BFloat16, CnnMemoryFormat.Auto, CPU, "convnext_tiny", 224).Settings.ChannelsLast,
            "and faster in bfloat16");

        var (small, smallReason) = ComputeSelection.Resolve(CnnPrecision.Auto, CnnMemoryFormat.Auto, CPU, "resnet18", 28);
        Assert.AreEqual(ComputeSettings.Float32, small, "below 64 px Auto is float32 contiguous: " + smallReason);
        var (onnx, onnxReason) = ComputeSelection.Resolve(CnnPrecision.Auto, CnnMemoryFormat.Auto, CPU, "resnet18", 224, CnnInferenceEngine.OnnxRuntime);
        Assert.AreEqual(ComputeSettings.Float32, onnx, "with ONNX Runtime Auto is what it computes: " + onnxReason);
    }

    [TestMethod]
    public void TrainingDefaultsToAutoAndInferenceToTheReferenceArithmetic()
    {
        TorchRuntime.EnsureLoaded();
        foreach (CnnFitOptions training in new CnnFitOptions[] { new CnnTrainerOptions(), new Cnn.MLNet.Distillation.CnnDistillationOptions() })
        {
            Assert.AreEqual(CnnPrecision.Auto, training.Precision, training.GetType().Name);
            Assert.AreEqual(CnnMemoryFormat.Auto, training.MemoryFormat, training.GetType().Name);
            var (settings, reason) = ComputeSelection.Resolve(training.Precision, training.MemoryFormat, CPU, "resnet18", 224);
            Assert.AreEqual(new ComputeSettings(CpuFeatures.HasNativeBFloat16 ? ScalarType.BFloat16 : null, ChannelsLast: true), settings,
                $"{training.GetType().Name}: bfloat16 where the CPU has it natively, channels-last where it measured faster ({reason})");
            Assert.AreEqual(ComputeSettings.Float32, ComputeSelection.Resolve(training.Precision, training.MemoryFormat, CPU, "resnet18", 28).Settings,
                "under 64 px the default is float32 contiguous");
            Assert.AreEqual(ComputeSettings.Float32, ComputeSelection.Resolve(training.InferencePrecision, training.InferenceMemoryFormat, CPU, "resnet18", 224).Settings,
                $"{training.GetType().Name}: the trained model predicts in float32 contiguous");
        }
        var features = new Cnn.MLNet.Features.CnnFeatureOptions();
        Assert.AreEqual(ComputeSettings.Float32, ComputeSelection.Resolve(features.Precision, features.MemoryFormat, CPU, "resnet18", 224).Settings,
            "features stay in the reference arithmetic and layout unless asked");

        // The command line: train and distill compute as auto picks; predict, eval and features in float32 contiguous (or as the model file says).
        const string stored = ", or what the model file stores";
        foreach (var (verb, precision, format) in new[] { ("train", "auto", "auto"), ("distill", "auto", "auto"), ("predict", "float32" + stored, "contiguous" + stored),
                                                          ("eval", "float32" + stored, "contiguous" + stored), ("features", "float32" + stored, "contiguous" + stored) })
        {
            string help = Cli.CliHost.Succeed(verb, "--help");
            StringAssert.Contains(help, $"float16 (CUDA only) (default {precision})", verb);
            StringAssert.Contains(help, $"in the precision used), contiguous or channels-last (default {format})", verb);
        }
    }

    [TestMethod]
    public void AutoWithOnnxRuntimeIsAcceptedAndAReducedPrecisionIsNot()
    {
        var options = new CnnTrainerOptions { Precision = CnnPrecision.Auto, InferenceEngine = CnnInferenceEngine.OnnxRuntime, Device = CnnDevice.Cpu };
        options.Validate();
        options.Precision = CnnPrecision.BFloat16;
        var ex = Assert.ThrowsExactly<ArgumentException>(options.Validate);
        StringAssert.Contains(ex.Message, "computes in float32");
    }

    [TestMethod]
    public void AReducedInferencePrecisionWithOnnxRuntimeIsRefusedBeforeAnyWork()
    {
        var options = new CnnTrainerOptions { Precision = CnnPrecision.Float32, InferencePrecision = CnnPrecision.BFloat16, InferenceEngine = CnnInferenceEngine.OnnxRuntime, Device = CnnDevice.Cpu };
        var ex = Assert.ThrowsExactly<ArgumentException>(options.Validate);
        StringAssert.Contains(ex.Message, "InferencePrecision is BFloat16");
        options = new CnnTrainerOptions { InferencePrecision = CnnPrecision.Float16, Device = CnnDevice.Cpu };
        ex = Assert.ThrowsExactly<ArgumentException>(() => CnnTrainer.ResNet18(options));
        StringAssert.Contains(ex.Message, "InferencePrecision = Float16 needs a CUDA device");
    }

    [TestMethod]
    public void Float16OnTheCpuIsRefusedBeforeAnyWork()
    {
        var options = new CnnTrainerOptions { Precision = CnnPrecision.Float16, Device = CnnDevice.Cpu };
        var ex = Assert.ThrowsExactly<ArgumentException>(() => CnnTrainer.ResNet18(options));
        StringAssert.Contains(ex.Message, "Float16 needs a CUDA device");
        StringAssert.Contains(ex.Message, "use BFloat16");
    }
}
