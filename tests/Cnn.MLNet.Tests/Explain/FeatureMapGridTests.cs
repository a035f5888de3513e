using Cnn.Backbones.Models;
using Cnn.MLNet.Explain;
using Cnn.MLNet.Imaging;
using static TorchSharp.torch;

namespace Cnn.MLNet.Tests.Explain;

[TestClass]
public sealed class FeatureMapGridTests
{
    private const int H = 3, W = 4;

    /// <summary>
    /// Channel 0 is a horizontal ramp, channels 1..4 are the constant k with one hot cell (value 2k + 1) at cell k − 1, channel 5 is
    /// constant, channels 6.. are noise that must not be drawn.
    /// </summary>
    private static StageActivation Synthetic(int channels)
    {
        var values = new float[channels * H * W];
        var noise = new Random(1);
        for (int k = 0; k < channels; k++)
            for (int i = 0; i < H * W; i++)
                values[k * H * W + i] = k switch
                {
                    0 => i % W * 10 - 7,
                    <= 4 => i == k - 1 ? 2 * k + 1 : k,
                    5 => 5,
                    _ => (float)noise.NextDouble(),
                };
        return new StageActivation(1, "layer1", channels, H, W, values);
    }

    [TestMethod]
    public void EachTileShowsItsChannelMinMaxNormalisedAtItsGridPosition()
    {
        var options = new FeatureMapGridOptions { MaxChannels = 6, MinTileSize = 8, Separator = 2 }; // scale 2: tiles 8×6, 3 columns
        var grid = FeatureMapGrid.Render(Synthetic(9), options);
        Plots.TestPictures.Keep("feature-maps-synthetic.png", grid.ToPng());
        Assert.AreEqual((3 * 8 + 4 * 2, 2 * 6 + 3 * 2), (grid.Width, grid.Height), "6 of 9 channels: 3×2 tiles of 8×6 with 2-pixel lines");
        for (int k = 0; k < 6; k++)
        {
            int left = 2 + k % 3 * 10, top = 2 + k / 3 * 8;
            for (int y = 0; y < 6; y++)
                for (int x = 0; x < 8; x++)
                {
                    int cell = y / 2 * W + x / 2;
                    byte expected = k switch
                    {
                        0 => (byte)Math.Round(255.0 * (x / 2) / 3), // the ramp: 0, 85, 170, 255
                        <= 4 => cell == k - 1 ? (byte)255 : (byte)0,
                        _ => 0, // constant channel
                    };
                    Assert.AreEqual((expected, expected, expected), grid[left + x, top + y], $"channel {k}, tile pixel ({x}, {y})");
                }
        }
        Assert.AreEqual(((byte)255, (byte)255, (byte)255), grid[0, 0], "outer separator");
        Assert.AreEqual(((byte)255, (byte)255, (byte)255), grid[10, 5], "separator between tiles 0 and 1");
    }

    [TestMethod]
    public void UnusedCellsTakeTheSeparatorColourAndThePngDecodesToThePixels()
    {
        var grid = FeatureMapGrid.Render(Synthetic(5), new FeatureMapGridOptions { MinTileSize = 1, Separator = 1, SeparatorColor = (0, 90, 200) });
        Assert.AreEqual((3 * 4 + 4, 2 * 3 + 3), (grid.Width, grid.Height), "5 channels: 3 columns, 2 rows, maps at their size");
        Assert.AreEqual(((byte)0, (byte)90, (byte)200), grid[1 + 2 * 5 + 1, 1 + 4 + 1], "the sixth cell is empty");
        Assert.AreEqual(((byte)255, (byte)255, (byte)255), grid[1 + 1 * 5 + 0, 1 + 0], "channel 1's hot cell (0, 0)");
        var decoded = ImageDecoder.Decode(grid.ToPng(), 3, "grid.png");
        Assert.AreEqual((grid.Width, grid.Height), (decoded.Width, decoded.Height));
        CollectionAssert.AreEqual(grid.Pixels, decoded.Pixels.ToArray());
    }

    [TestMethod]
    public void CapturesAStageOfARealNetwork()
    {
        using var model = ModelRegistry.Create("resnet18", new ModelOptions { NumClasses = 3 });
        using var scope = NewDisposeScope();
        var input = randn([1, 3, 64, 64], generator: new TorchSharp.torch.Generator(5));
        var activation = FeatureMaps.Capture(model, input, stage: 1);
        Assert.AreEqual(("layer1", 64, 16, 16), (activation.StageName, activation.Channels, activation.Height, activation.Width));
        model.eval();
        using (no_grad())
            CollectionAssert.AreEqual(model.ForwardStages(input)[1].data<float>().ToArray(), activation.Values);
        var grid = FeatureMapGrid.Render(activation);
        Plots.TestPictures.Keep("feature-maps-layer1.png", grid.ToPng());
        Assert.AreEqual((8 * 48 + 9 * 2, 8 * 48 + 9 * 2), (grid.Width, grid.Height), "64 channels of 16×16, enlarged 3×, 8×8 tiles");
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => FeatureMaps.Capture(model, input, stage: 7));
        StringAssert.Contains(error.Message, "1 = layer1 (64 channels, /4)");
    }
}
