using Cnn.Backbones.Clip;
using Cnn.Backbones.Tests.Models;
using Cnn.Backbones.Weights;
using Cnn.Tests.Shared;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Clip;

/// <summary>
/// <see cref="ClipModel"/> against OpenCLIP at test time: OpenCLIP builds a model with random weights, saves its state dict,
/// and encodes random images, a few texts and a zero-shot classifier; ours loads the state dict and must agree within 1e-4
/// (relative to the largest reference value). Float32 throughout.
/// </summary>
[TestClass]
public sealed class ClipModelParityTests
{
    internal static readonly string[] Texts = ["a photo of a cat.", "A DOG, running!", "a diagram", "x"];
    internal static readonly string[] Labels = ["cat", "dog", "school bus"];
    internal static readonly string[] Templates = ["a photo of a {}.", "a blurry photo of the {}.", "itap of my {}"];

    private const string Script = """
        name, weights_path, io_path = sys.argv[1], sys.argv[2], sys.argv[3]
        from open_clip.zero_shot_classifier import build_zero_shot_classifier
        torch.manual_seed(0)
        model = open_clip.create_model(name, pretrained=None).eval()
        # Non-trivial BatchNorm statistics and a non-default temperature, so that loading them is checked too.
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.1, 0.1); m.running_var.uniform_(0.5, 1.5); m.weight.uniform_(0.5, 1.5)
            model.logit_scale.fill_(3.9)
        torch.save(model.state_dict(), weights_path)
        tok = open_clip.get_tokenizer(name)
        texts = json.loads(sys.argv[4]); labels = json.loads(sys.argv[5]); templates = json.loads(sys.argv[6])
        images = torch.randn(2, 3, 224, 224)
        ids = tok(texts)
        with torch.no_grad():
            fi = model.encode_image(images)
            ft = model.encode_text(ids)
            w = build_zero_shot_classifier(model, tok, labels, templates, num_classes_per_batch=2)
            logits = model.logit_scale.exp() * torch.nn.functional.normalize(fi, dim=-1) @ w
        torch.save({'images': images, 'ids': ids, 'image_features': fi, 'text_features': ft, 'zs_weights': w.contiguous(), 'zs_logits': logits}, io_path)
        """;

    /// <summary>Runs the reference for <paramref name="name"/>; returns the weights path and the tensors.</summary>
    internal static (string Weights, StateDict Io) Reference(TempDirectory temp, string name)
    {
        string weights = temp.File($"{name}.pt"), io = temp.File($"{name}-io.pt");
        OpenClipReference.Run(Script, name, weights, io, System.Text.Json.JsonSerializer.Serialize(Texts),
            System.Text.Json.JsonSerializer.Serialize(Labels), System.Text.Json.JsonSerializer.Serialize(Templates));
        return (weights, WeightFile.Load(io));
    }

    [TestMethod]
    [DataRow("ViT-B-32")]
    [DataRow("ViT-B-16")]
    [DataRow("RN50")]
    public void EncodersAndZeroShot_EqualOpenClip(string name)
    {
        using var temp = new TempDirectory();
        var (weightsPath, io) = Reference(temp, name);
        using var _ = io;
        using var model = ClipModel.Create(name);
        model.LoadWeights(weightsPath);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();

        TensorAssert.AssertClose(io["image_features"], model.EncodeImage(io["images"]), $"{name} encode_image");
        TensorAssert.AssertClose(io["text_features"], model.EncodeText(io["ids"]), $"{name} encode_text (reference ids)");
        var ours = ClipTokenizer.Default.Tokenize(Texts).ToTensor();
        Assert.IsTrue(TensorAssert.Identical(io["ids"], ours), "our tokens equal OpenCLIP's");
        TensorAssert.AssertClose(io["text_features"], model.EncodeText(Texts), $"{name} encode_text (our tokens)");

        using var classifier = ClipZeroShotClassifier.Build(model, Labels, Templates);
        TensorAssert.AssertClose(io["zs_weights"], classifier.Weights, $"{name} zero-shot weights");
        TensorAssert.AssertClose(io["zs_logits"], classifier.Logits(model.EncodeImage(io["images"])), $"{name} zero-shot logits");
    }
}
