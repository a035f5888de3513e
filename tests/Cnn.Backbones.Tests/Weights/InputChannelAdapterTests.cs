using Cnn.Backbones.Native;
using Cnn.Backbones.Weights;
using Cnn.Tests.Shared;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Weights;

[TestClass]
public sealed class InputChannelAdapterTests
{
    [TestInitialize]
    public void Init() => TorchRuntime.EnsureLoaded();

    [TestMethod]
    public void MatchesTimmAdaptInputConvExactly()
    {
        using var dir = new TempDirectory();
        string file = dir.File("adapt.safetensors");
        WeightsReference.Run("""
            def adapt_input_conv(in_chans, conv_weight):  # timm.models._manipulate.adapt_input_conv
                conv_type = conv_weight.dtype
                conv_weight = conv_weight.float()
                O, I, J, K = conv_weight.shape
                if in_chans == 1:
                    if I > 3:
                        assert conv_weight.shape[1] % 3 == 0
                        conv_weight = conv_weight.reshape(O, I // 3, 3, J, K)
                        conv_weight = conv_weight.sum(dim=2, keepdim=False)
                    else:
                        conv_weight = conv_weight.sum(dim=1, keepdim=True)
                elif in_chans != 3:
                    if I != 3:
                        raise NotImplementedError('Weight format not supported by conversion.')
                    else:
                        repeat = int(math.ceil(in_chans / 3))
                        conv_weight = conv_weight.repeat(1, repeat, 1, 1)[:, :in_chans, :, :]
                        conv_weight *= (3 / float(in_chans))
                conv_weight = conv_weight.to(conv_type)
                return conv_weight

            torch.manual_seed(11)
            w = torch.randn(8, 3, 7, 7)
            w12 = torch.randn(4, 12, 2, 2)
            out = {"w": w, "w12": w12, "w_half": w.half()}
            for n in [1, 2, 3, 4, 5, 7, 9]:
                out["to%d" % n] = adapt_input_conv(n, w.clone())
            out["w12_to1"] = adapt_input_conv(1, w12.clone())
            out["half_to4"] = adapt_input_conv(4, w.half())
            out["half_to1"] = adapt_input_conv(1, w.half())
            st_write(sys.argv[1], out)
            """, file);

        using var reference = SafeTensors.Read(file);
        void Check(string source, int channels, string expectedName)
        {
            using var adapted = InputChannelAdapter.Adapt(reference[source], channels);
            var expected = reference[expectedName];
            Assert.AreEqual(expected.dtype, adapted.dtype, expectedName);
            CollectionAssert.AreEqual(expected.shape, adapted.shape, expectedName);
            Assert.IsTrue(expected.equal(adapted).all().item<bool>(), $"{expectedName}: max difference {(expected.to(ScalarType.Float64) - adapted.to(ScalarType.Float64)).abs().max().item<double>()}");
        }
        foreach (int n in new[] { 1, 2, 3, 4, 5, 7, 9 }) Check("w", n, $"to{n}");
        Check("w12", 1, "w12_to1");
        Check("w_half", 4, "half_to4");
        Check("w_half", 1, "half_to1");

        // Same channel count: an independent copy.
        using var copy = InputChannelAdapter.Adapt(reference["w"], 3);
        copy.zero_();
        Assert.AreNotEqual(0.0, reference["w"].abs().sum().item<float>());
    }

    [TestMethod]
    public void UndefinedConversionsFailClearly()
    {
        using var scope = NewDisposeScope();
        var ex = Assert.ThrowsExactly<ArgumentException>(() => InputChannelAdapter.Adapt(torch.randn(4, 12, 3, 3), 4));
        StringAssert.Contains(ex.Message, "12-channel weight to 4 channels");
        ex = Assert.ThrowsExactly<ArgumentException>(() => InputChannelAdapter.Adapt(torch.randn(4, 5, 3, 3), 1));
        StringAssert.Contains(ex.Message, "not a multiple of 3");
        ex = Assert.ThrowsExactly<ArgumentException>(() => InputChannelAdapter.Adapt(torch.randn(4, 3), 1));
        StringAssert.Contains(ex.Message, "[4, 3]");
        Assert.ThrowsExactly<ArgumentException>(() => InputChannelAdapter.Adapt(torch.randn(4, 3, 3, 3), 0));
    }
}
