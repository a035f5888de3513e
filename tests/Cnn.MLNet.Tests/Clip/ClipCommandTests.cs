using System.Text.Json;
using Cnn.Backbones.Weights;
using Cnn.MLNet.Tests.Cli;
using Cnn.Tests.Shared;
using static TorchSharp.torch;

namespace Cnn.MLNet.Tests.Clip;

/// <summary><c>cnn zero-shot</c> and <c>cnn embed</c> against OpenCLIP at test time, and their refusals of bad input.</summary>
[TestClass]
public sealed class ClipCommandTests
{
    private const string Script = """
        folder = sys.argv[1]
        from PIL import Image
        import numpy as np
        from open_clip.zero_shot_classifier import build_zero_shot_classifier
        torch.manual_seed(1)
        model, _, preprocess = open_clip.create_model_and_transforms('ViT-B-32', pretrained=None)
        model.eval()
        torch.save(model.state_dict(), folder + '/w.pt')
        rng = np.random.default_rng(7)
        paths = []
        for i, (w, h) in enumerate([(260, 230), (200, 240)]):
            p = f'{folder}/img{i}.png'
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(p)
            paths.append(p)
        x = torch.stack([preprocess(Image.open(p)) for p in paths])
        tok = open_clip.get_tokenizer('ViT-B-32')
        with torch.no_grad():
            w = build_zero_shot_classifier(model, tok, ['cat', 'dog', 'car'], ['a photo of a {}.', 'a drawing of the {}.'])
            probs = (model.logit_scale.exp() * model.encode_image(x, normalize=True) @ w).softmax(-1)
            text = model.encode_text(tok(['a photo of a cat']), normalize=True)
        print(json.dumps({'paths': paths, 'probs': probs.tolist(), 'text': text[0].tolist()}))
        """;

    [TestMethod]
    public void ZeroShotAndEmbed_EqualOpenClip()
    {
        using var folder = new TempDirectory();
        using var reference = JsonDocument.Parse(OpenClipReference.Run(Script, folder.Path));
        var paths = reference.RootElement.GetProperty("paths").EnumerateArray().Select(p => p.GetString()!).ToArray();
        var probs = reference.RootElement.GetProperty("probs").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
        string weights = folder.File("w.pt");
        string[] labels = ["cat", "dog", "car"];

        var output = CliHost.Succeed([
            "zero-shot", "--model", "ViT-B-32", "--weights", weights, "--labels", "cat, dog, car", "--template", "a photo of a {}.|a drawing of the {}.",
            "--top", "3", "--json", .. paths]);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.AreEqual(paths.Length, lines.Length, output);
        for (int i = 0; i < paths.Length; i++)
        {
            using var line = JsonDocument.Parse(lines[i]);
            Assert.AreEqual(paths[i], line.RootElement.GetProperty("file").GetString());
            var top = line.RootElement.GetProperty("top").EnumerateArray().ToArray();
            Assert.AreEqual(3, top.Length);
            foreach (var entry in top)
            {
                int c = Array.IndexOf(labels, entry.GetProperty("label").GetString());
                Assert.AreEqual(probs[i][c], entry.GetProperty("probability").GetDouble(), 1e-3, $"image {i} label {labels[c]}");
            }
            Assert.AreEqual(probs[i].Max(), top[0].GetProperty("probability").GetDouble(), 1e-3, "top-1 first");
        }

        var text = CliHost.Succeed("embed", "--model", "ViT-B-32", "--weights", weights, "--text", "a photo of a cat", "--json");
        using var embedded = JsonDocument.Parse(text.Trim());
        var ours = embedded.RootElement.GetProperty("embedding").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        var expected = reference.RootElement.GetProperty("text").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        Assert.AreEqual(expected.Length, ours.Length);
        double worst = expected.Zip(ours, (a, b) => Math.Abs(a - b)).Max();
        Assert.IsTrue(worst <= 1e-4 * expected.Max(Math.Abs), $"text embedding differs by {worst}");

        var images = CliHost.Succeed("embed", "--model", "ViT-B-32", "--weights", weights, paths[0]);
        StringAssert.Contains(images, "(dim 512)");
    }

    [TestMethod]
    public void BadInput_IsRefusedWithOneClearLine()
    {
        using var folder = new TempDirectory();
        string image = folder.File("a.png");
        File.WriteAllBytes(image, Convert.FromBase64String("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="));
        StringAssert.Contains(CliHost.FailOneLine(2, "zero-shot", "--labels", " , ", image), "--labels is empty");
        StringAssert.Contains(CliHost.FailOneLine(2, "zero-shot", "--labels", "cat,dog", "--template", "a photo of a cat", image), "has no '{}'");
        StringAssert.Contains(CliHost.FailOneLine(2, "zero-shot", "--model", "ViT-Z-1", "--labels", "cat,dog", image), "unknown CLIP model 'ViT-Z-1'");
        StringAssert.Contains(CliHost.FailOneLine(2, "embed", "--text", "x", image), "not both");

        // A text past 77 tokens is truncated with a warning, as OpenCLIP does.
        var (exit, _, warning) = CliHost.Run("embed", "--text", string.Join(' ', Enumerable.Repeat("word", 100)));
        Assert.AreEqual(0, exit, warning);
        StringAssert.Contains(warning, "longer than 77 tokens; it was truncated");

        // An RN50 checkpoint given to ViT-B-32: refused before loading, naming what the file holds.
        string rn50 = folder.File("rn50.safetensors");
        using (var scope = NewDisposeScope())
        {
            var fake = new Dictionary<string, Tensor>
            {
                ["text_projection"] = zeros(512, 1024), ["token_embedding.weight"] = zeros(49408, 512), ["positional_embedding"] = zeros(77, 512),
                ["visual.conv3.weight"] = zeros(64, 32, 3, 3), ["visual.attnpool.positional_embedding"] = zeros(50, 2048),
            };
            for (int s = 1; s <= 4; s++)
                for (int b = 0; b < new[] { 3, 4, 6, 3 }[s - 1]; b++) fake[$"visual.layer{s}.{b}.conv1.weight"] = zeros(1);
            for (int b = 0; b < 12; b++) fake[$"transformer.resblocks.{b}.ln_1.weight"] = zeros(512);
            SafeTensors.Write(rn50, fake);
        }
        string wrongTower = CliHost.FailOneLine(1, "embed", "--model", "ViT-B-32", "--weights", rn50, "--text", "a cat");
        StringAssert.Contains(wrongTower, "ModifiedResNet");
        StringAssert.Contains(wrongTower, "RN50");
    }
}
