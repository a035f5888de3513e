using Cnn.Backbones.Weights;
using Cnn.MLNet.Clip;
using Cnn.MLNet.Persistence;
using Cnn.MLNet;
using Cnn.Tests.Shared;
using Microsoft.ML.Data;
using Microsoft.ML;
using static TorchSharp.torch;

namespace Cnn.MLNet.Tests.Clip;

/// <summary>
/// The CLIP transforms in an ML.NET pipeline against OpenCLIP at test time (its own preprocessing of the same PNG files, its
/// encode_image and build_zero_shot_classifier), saved with <see cref="CnnPipelineFile"/> and reloaded, and evaluated.
/// </summary>
[TestClass]
public sealed class ClipTransformTests
{
    private static readonly string[] Labels = ["cat", "dog", "car"];
    private static readonly string[] Templates = ["a photo of a {}.", "a drawing of the {}."];

    private sealed class Row
    {
        public string ImagePath { get; set; } = "";

        public string Label { get; set; } = "";
    }

    private sealed class LabelRow
    {
        public string Label { get; set; } = "";
    }

    private sealed class TextRow
    {
        public string Text { get; set; } = "";
    }

    private const string Script = """
        folder = sys.argv[1]
        from PIL import Image
        import numpy as np
        from open_clip.zero_shot_classifier import build_zero_shot_classifier
        torch.manual_seed(0)
        model, _, preprocess = open_clip.create_model_and_transforms('ViT-B-32', pretrained=None)
        model.eval()
        torch.save(model.state_dict(), folder + '/w.pt')
        rng = np.random.default_rng(5)
        paths = []
        for i, (w, h) in enumerate([(300, 200), (224, 260), (180, 180)]):
            p = f'{folder}/img{i}.png'
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(p)
            paths.append(p)
        x = torch.stack([preprocess(Image.open(p)) for p in paths])
        tok = open_clip.get_tokenizer('ViT-B-32')
        labels = json.loads(sys.argv[2]); templates = json.loads(sys.argv[3]); texts = json.loads(sys.argv[4])
        with torch.no_grad():
            fi = model.encode_image(x, normalize=True)
            w = build_zero_shot_classifier(model, tok, labels, templates)
            probs = (model.logit_scale.exp() * fi @ w).softmax(-1)
            ft = model.encode_text(tok(texts), normalize=True)
        torch.save({'image_embeddings': fi, 'probabilities': probs, 'text_embeddings': ft}, folder + '/io.pt')
        print(json.dumps(paths))
        """;

    [TestMethod]
    public void ZeroShotAndEmbeddings_EqualOpenClip_SaveReloadAndEvaluate()
    {
        using var folder = new TempDirectory();
        string[] texts = ["a photo of a cat", "a red car on a road"];
        var paths = System.Text.Json.JsonSerializer.Deserialize<string[]>(OpenClipReference.Run(Script, folder.Path,
            System.Text.Json.JsonSerializer.Serialize(Labels), System.Text.Json.JsonSerializer.Serialize(Templates), System.Text.Json.JsonSerializer.Serialize(texts)))!;
        using var io = WeightFile.Load(folder.File("io.pt"));
        var ml = new MLContext(seed: 0);
        var rows = paths.Select((p, i) => new Row { ImagePath = p, Label = Labels[i] }).ToArray();
        var data = ml.Data.LoadFromEnumerable(rows);
        string weights = folder.File("w.pt");

        var pipeline = ml.Transforms.ZeroShotClassify(Labels, Templates, new ClipZeroShotOptions { WeightsPath = weights, ImageColumnName = "ImagePath", BatchSize = 2 })
            .Append(ml.Transforms.ExtractClipImageEmbeddings(new ClipEmbeddingOptions { WeightsPath = weights, InputColumnName = "ImagePath", OutputColumnName = "Embedding" }));
        using var model = (IDisposable)pipeline.Fit(data);
        var fitted = (ITransformer)model;
        var output = fitted.Transform(data);
        var scores = output.GetColumn<float[]>("Score").ToArray();
        var embeddings = output.GetColumn<float[]>("Embedding").ToArray();
        AssertClose(io["probabilities"], scores, "zero-shot probabilities", 1e-3);
        AssertClose(io["image_embeddings"], embeddings, "image embeddings", 1e-3);

        // PredictedLabel is a key with the labels as key values: Evaluate works with no training.
        var evaluated = ml.Transforms.Conversion.MapValueToKey("Label", keyData: ml.Data.LoadFromEnumerable(Labels.Select(l => new LabelRow { Label = l })))
            .Fit(output).Transform(output);
        var metrics = ml.MulticlassClassification.Evaluate(evaluated);
        var predicted = output.GetColumn<uint>("PredictedLabel").ToArray();
        double expectedAccuracy = Enumerable.Range(0, rows.Length).Count(i => scores[i].ToList().IndexOf(scores[i].Max()) == i) / (double)rows.Length;
        Assert.AreEqual(expectedAccuracy, metrics.MicroAccuracy, 1e-9, "Evaluate reads PredictedLabel");
        CollectionAssert.AreEqual(scores.Select(s => (uint)(s.ToList().IndexOf(s.Max()) + 1)).ToArray(), predicted, "PredictedLabel is the arg-max key");
        VBuffer<ReadOnlyMemory<char>> keys = default;
        output.Schema["PredictedLabel"].GetKeyValues(ref keys);
        CollectionAssert.AreEqual(Labels, keys.DenseValues().Select(k => k.ToString()).ToArray());

        // Save with CnnPipelineFile, reload, same outputs.
        string file = folder.File("clip.zip");
        CnnPipelineFile.Save(ml, fitted, data.Schema, file);
        var reloaded = CnnPipelineFile.Load(ml, file, out var schema);
        try
        {
            var again = reloaded.Transform(data);
            CollectionAssert.AreEqual(scores.SelectMany(s => s).ToArray(), again.GetColumn<float[]>("Score").SelectMany(s => s).ToArray(), "reloaded scores");
            CollectionAssert.AreEqual(embeddings.SelectMany(s => s).ToArray(), again.GetColumn<float[]>("Embedding").SelectMany(s => s).ToArray(), "reloaded embeddings");
        }
        finally
        {
            foreach (var stage in CnnPipelineFile.Stages(reloaded)) (stage as IDisposable)?.Dispose();
        }

        // Text embeddings.
        var textData = ml.Data.LoadFromEnumerable(texts.Select(t => new TextRow { Text = t }));
        using var textModel = ml.Transforms.ExtractClipTextEmbeddings(new ClipEmbeddingOptions { WeightsPath = weights, InputColumnName = "Text" }).Fit(textData);
        AssertClose(io["text_embeddings"], textModel.Transform(textData).GetColumn<float[]>("Embedding").ToArray(), "text embeddings", 1e-4);
    }

    [TestMethod]
    public void BadLabelsAndTemplates_AreRefusedClearly()
    {
        var ml = new MLContext();
        var empty = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.ZeroShotClassify([]));
        StringAssert.Contains(empty.Message, "label list is empty");
        var template = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.ZeroShotClassify(["cat", "dog"], ["a photo of a cat"]));
        StringAssert.Contains(template.Message, "has no '{}'");
        var repeated = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.ZeroShotClassify(["cat", "cat"]));
        StringAssert.Contains(repeated.Message, "given 2 times");
        var missing = Assert.ThrowsExactly<FileNotFoundException>(() => ml.Transforms.ZeroShotClassify(["cat", "dog"], null, new ClipZeroShotOptions { WeightsPath = "/nonexistent/w.bin" }));
        StringAssert.Contains(missing.Message, "/nonexistent/w.bin");
        var model = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.ZeroShotClassify(["cat", "dog"], null, new ClipZeroShotOptions { ModelName = "ViT-X-99" }));
        StringAssert.Contains(model.Message, "ViT-B-32");
    }

    private static void AssertClose(Tensor expected, float[][] actual, string what, double relative)
    {
        using var scope = NewDisposeScope();
        var ours = tensor(actual.SelectMany(a => a).ToArray(), [actual.Length, actual[0].Length]);
        CollectionAssert.AreEqual(expected.shape, ours.shape, what);
        double scale = expected.abs().max().item<float>();
        double diff = (ours - expected).abs().max().item<float>();
        Assert.IsTrue(diff <= relative * scale, $"{what}: max|diff| {diff:G4} > {relative:G2} · {scale:G4}");
    }
}
