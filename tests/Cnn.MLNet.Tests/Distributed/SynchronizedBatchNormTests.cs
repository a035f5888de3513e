using Cnn.Backbones.Models;
using Cnn.Backbones.Native;
using Cnn.MLNet.Distributed;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Tests.Distributed;

/// <summary>
/// Synchronised BatchNorm on two ranks (two threads of this process, <see cref="InProcessCommunicator"/>) against one process
/// with their batches together: the same outputs, gradients and running statistics; without it each rank's own statistics differ.
/// </summary>
[TestClass]
[DoNotParallelize] // two ranks on two threads, and the global seed
public sealed class SynchronizedBatchNormTests
{
    private const int Ranks = 2, PerRank = 4;

    /// <summary>
    /// resnet18 (20 BatchNorm layers; at 32 px its last maps are 1×1, so each rank's batch-4 statistics come from 4 values per
    /// channel, far from the global batch's), one training-mode forward and backward of a weighted sum of the logits, in float64
    /// so that the comparison is of the arithmetic, not of float32 rounding (at random initialisation float32 gradients of
    /// resnet18 are themselves a few percent from float64's, for BatchNorm as for this). Ranks' gradients are summed (the loss is
    /// a sum), as DistributedDataParallel's average is of per-rank means.
    /// </summary>
    [TestMethod]
    public void TwoRanksOfBatchBNormaliseAndDifferentiateAsOneProcessOfBatch2B()
    {
        TorchRuntime.EnsureLoaded();
        torch.manual_seed(3);
        using var reference = Create();
        var initial = reference.state_dict().ToDictionary(e => e.Key, e => e.Value.detach().clone());
        using var x = randn(Ranks * PerRank, 3, 32, 32, dtype: ScalarType.Float64);
        using var weights = randn(Ranks * PerRank, 4, dtype: ScalarType.Float64);
        var (expectedOutput, expectedGradients) = Step(reference, x, weights);
        var expectedState = reference.state_dict().ToDictionary(e => e.Key, e => e.Value.detach().clone());

        foreach (bool synchronised in new[] { true, false })
        {
            var models = Enumerable.Range(0, Ranks).Select(_ => Create()).ToArray();
            foreach (var model in models) model.load_state_dict(initial);
            var outputs = new Tensor[Ranks];
            var gradients = new Dictionary<string, Tensor>[Ranks];
            int layers = 0;
            using (var group = new InProcessCommunicator(Ranks))
            {
                group.Run(r =>
                {
                    using var norms = synchronised ? new SynchronizedBatchNorm(models[r], group.Rank(r)) : null;
                    layers = norms?.Layers ?? layers;
                    (outputs[r], gradients[r]) = Step(models[r], x.narrow(0, r * PerRank, PerRank), weights.narrow(0, r * PerRank, PerRank));
                });
            }
            using var output = cat(outputs);
            double outputError = Relative(output, expectedOutput);
            double gradientError = expectedGradients.Keys.Max(k => Relative(gradients[0][k].Plus(gradients[1][k]), expectedGradients[k]));
            double stateError = expectedState.Where(e => e.Value.is_floating_point())
                .Max(e => Math.Max(Relative(models[0].state_dict()[e.Key], e.Value), Relative(models[1].state_dict()[e.Key], e.Value)));
            Console.WriteLine($"synchronised {synchronised}: relative errors: output {outputError:G3}, gradients {gradientError:G3}, running statistics {stateError:G3}");
            if (synchronised)
            {
                Assert.AreEqual(20, layers, "every BatchNorm of resnet18 is synchronised");
                Assert.IsLessThan(1e-9, outputError, "outputs");
                Assert.IsLessThan(1e-9, gradientError, "gradients (worst parameter)");
                Assert.IsLessThan(1e-9, stateError, "running statistics");
            }
            else
            {
                Assert.IsGreaterThan(1e-1, outputError, "per-rank statistics must change the outputs, or this test proves nothing");
            }
            foreach (var model in models) model.Dispose();
        }

        static Backbone Create()
        {
            var model = ModelRegistry.Create("resnet18", new ModelOptions { NumClasses = 4 });
            model.to(ScalarType.Float64);
            return model;
        }
    }

    /// <summary>
    /// In eval mode the hooks change nothing (running statistics; a world of one rank gives plain BatchNorm in training mode); once
    /// disposed they are gone.
    /// </summary>
    [TestMethod]
    public void AOneRankWorldIsPlainBatchNormAndEvalModeIsUntouched()
    {
        TorchRuntime.EnsureLoaded();
        torch.manual_seed(4);
        using var model = ModelRegistry.Create("resnet18", new ModelOptions { NumClasses = 3 });
        using var x = randn(8, 3, 32, 32);
        var initial = model.state_dict().ToDictionary(e => e.Key, e => e.Value.detach().clone());
        model.train();
        using var plain = model.call(x).detach();
        var plainState = model.state_dict().ToDictionary(e => e.Key, e => e.Value.detach().clone());
        model.eval();
        using var plainEval = model.call(x).detach();

        model.load_state_dict(initial);
        using var group = new InProcessCommunicator(1);
        using (var norms = new SynchronizedBatchNorm(model, group.Rank(0)))
        {
            model.train();
            using var synchronised = model.call(x).detach();
            Console.WriteLine($"one rank vs plain: output {Relative(synchronised, plain):G3}");
            Assert.IsLessThan(1e-4, Relative(synchronised, plain), "a one-rank world equals plain BatchNorm in training mode");
            foreach (var (key, value) in plainState.Where(e => e.Value.is_floating_point()))
                Assert.IsLessThan(1e-5, Relative(model.state_dict()[key], value), $"running statistic {key}");
            model.eval();
            using var synchronisedEval = model.call(x).detach();
            Assert.IsLessThan(1e-5, Relative(synchronisedEval, plainEval), "eval mode is plain BatchNorm");
        }
        var norm = model.modules().OfType<TorchSharp.Modules.BatchNorm>().First();
        Assert.AreEqual(0.1, norm.momentum!.Value, 1e-12, "the momentum is restored after every training-mode pass");
    }

    private static (Tensor Output, Dictionary<string, Tensor> Gradients) Step(Backbone model, Tensor x, Tensor weights)
    {
        model.train();
        model.zero_grad();
        var output = model.call(x);
        using (var loss = (output * weights).sum()) loss.backward();
        return (output.detach(), model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone()));
    }

    /// <summary>max|actual − expected| / max|expected|.</summary>
    private static double Relative(Tensor actual, Tensor expected)
    {
        using var scope = NewDisposeScope();
        return (actual.to(ScalarType.Float64) - expected.to(ScalarType.Float64)).abs().max().item<double>()
            / Math.Max(expected.abs().max().to(ScalarType.Float64).item<double>(), 1e-30);
    }
}
