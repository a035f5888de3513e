using System.Text.Json;
using Cnn.MLNet.Tests.Cli;
using Cnn.Tests.Shared;

namespace Cnn.MLNet.Tests.Clip;

/// <summary>
/// <c>cnn eval --model</c>: a zero-shot CLIP model evaluated on a labelled folder against OpenCLIP at test time (its
/// preprocessing of the same PNG files, <c>build_zero_shot_classifier</c> and logits), and its usage errors.
/// </summary>
[TestClass]
public sealed class ClipEvalCommandTests
{
    private const string Template = "a photo of a {}.|a drawing of the {}.";

    private const string Repository = "test/tiny-eval-clip";
    private const string HubName = "hf-hub:" + Repository;

    // A small CLIP (2 blocks per tower; OpenCLIP's own code builds it from the configuration) keeps the test to seconds; the hub
    // name alone gives the model, as OpenCLIP's create_model('hf-hub:…') does.
    private const string Script = """
        folder = sys.argv[1]
        label_sets = json.loads(sys.argv[2])
        templates = sys.argv[3].split('|')
        from PIL import Image
        import numpy as np
        from open_clip.zero_shot_classifier import build_zero_shot_classifier
        model_cfg = {'embed_dim': 64, 'quick_gelu': False,
                     'vision_cfg': {'image_size': 64, 'layers': 2, 'width': 128, 'head_width': 64, 'patch_size': 16},
                     'text_cfg': {'context_length': 77, 'vocab_size': 49408, 'width': 128, 'heads': 2, 'layers': 2}}
        hub = folder + '/hub'
        os.makedirs(hub)
        with open(hub + '/open_clip_config.json', 'w') as f:
            json.dump({'model_cfg': model_cfg}, f, indent=2)
        torch.manual_seed(2)
        random_model = open_clip.create_model('local-dir:' + hub)
        torch.save(random_model.state_dict(), hub + '/open_clip_pytorch_model.bin')
        model, _, preprocess = open_clip.create_model_and_transforms('local-dir:' + hub)
        model.eval()
        rng = np.random.default_rng(4)
        data = folder + '/data'
        files, truth = [], []
        for c, name in enumerate(['cat', 'dog', 'car']):
            os.makedirs(f'{data}/{name}')
            for i, (w, h) in enumerate([(120, 90), (80, 110), (100, 100)][: 3 - (c == 2)]):
                p = f'{data}/{name}/{i}.png'
                base = rng.integers(0, 256, (1, 1, 3))
                Image.fromarray(np.clip(base + rng.integers(-60, 60, (h, w, 3)), 0, 255).astype(np.uint8)).save(p)
                files.append(p); truth.append(name)
        x = torch.stack([preprocess(Image.open(p)) for p in files])
        tok = open_clip.get_tokenizer('local-dir:' + hub)
        out = []
        with torch.no_grad():
            fi = model.encode_image(x, normalize=True)
            for labels in label_sets:
                w = build_zero_shot_classifier(model, tok, labels, templates)
                probs = (model.logit_scale.exp() * fi @ w).softmax(-1)
                out.append({'labels': labels, 'truth': [labels.index(t) for t in truth], 'probs': probs.tolist()})
        print(json.dumps(out))
        """;

    [TestMethod]
    public void ZeroShotEvalOnAFolderEqualsOpenClipsClassifier()
    {
        using var folder = new TempDirectory();
        string[][] labelSets = [["car", "cat", "dog"], ["dog", "car", "bird", "cat"]];
        string output = OpenClipReference.Run(Script, folder.Path, JsonSerializer.Serialize(labelSets), Template);
        using var reference = JsonDocument.Parse(output.Trim().Split('\n')[^1]);
        string data = Path.Combine(folder.Path, "data"), plot = folder.File("cm.png");
        using var hub = new FakeHub(Repository, new Dictionary<string, byte[]>
        {
            ["open_clip_config.json"] = File.ReadAllBytes(Path.Combine(folder.Path, "hub", "open_clip_config.json")),
            ["open_clip_pytorch_model.bin"] = File.ReadAllBytes(Path.Combine(folder.Path, "hub", "open_clip_pytorch_model.bin")),
        });
        using var store = hub.UseForTests(folder.File("cache"));

        for (int set = 0; set < labelSets.Length; set++)
        {
            var expected = reference.RootElement[set];
            var labels = expected.GetProperty("labels").EnumerateArray().Select(l => l.GetString()!).ToArray();
            var truth = expected.GetProperty("truth").EnumerateArray().Select(t => t.GetInt32()).ToArray();
            var probs = expected.GetProperty("probs").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
            // OpenCLIP's predictions, the confusion matrix, accuracy, top-2 accuracy and log-loss they give.
            var predicted = probs.Select(p => Array.IndexOf(p, p.Max())).ToArray();
            var confusion = new long[labels.Length, labels.Length];
            for (int i = 0; i < truth.Length; i++) confusion[truth[i], predicted[i]]++;
            double accuracy = truth.Where((t, i) => predicted[i] == t).Count() / (double)truth.Length;
            double top2 = truth.Where((t, i) => probs[i].Count(p => p > probs[i][t]) < 2).Count() / (double)truth.Length;
            double logLoss = truth.Select((t, i) => -Math.Log(probs[i][t])).Average();

            string[] args = ["eval", "--model", HubName, "--template", Template, "--data", data, "--topk", "2", "--json", "--plot", plot];
            if (set == 1) args = [.. args, "--labels", string.Join(",", labels)];
            var (exit, stdout, stderr) = CliHost.Run(args);
            Assert.AreEqual(0, exit, stderr);
            using var report = JsonDocument.Parse(stdout);
            var root = report.RootElement;
            CollectionAssert.AreEqual(labels, root.GetProperty("classes").EnumerateArray().Select(c => c.GetProperty("name").GetString()).ToArray(), "class order = labels");
            Assert.AreEqual(truth.Length, root.GetProperty("count").GetInt32());
            var matrix = root.GetProperty("confusion_matrix").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetInt64()).ToArray()).ToArray();
            for (int r = 0; r < labels.Length; r++)
                for (int c = 0; c < labels.Length; c++)
                    Assert.AreEqual(confusion[r, c], matrix[r][c], $"labels {string.Join(",", labels)}: confusion[{labels[r]}, {labels[c]}]");
            Assert.AreEqual(accuracy, root.GetProperty("micro_accuracy").GetDouble(), 1e-9, "accuracy");
            Assert.AreEqual(top2, root.GetProperty("top_k_accuracy").GetDouble(), 1e-9, "top-2 accuracy");
            Assert.AreEqual(logLoss, root.GetProperty("log_loss").GetDouble(), 1e-3 * Math.Max(1, logLoss), "log-loss");
            StringAssert.Contains(stderr, "confusion matrix: ");
            Assert.IsTrue(new FileInfo(plot).Length > 0, "the confusion-matrix plot is written");
        }

        // The text report names the zero-shot model and the classes.
        string text = CliHost.Succeed("eval", "--model", HubName, "--data", data);
        StringAssert.Contains(text, "zero-shot " + HubName);
        StringAssert.Contains(text, "confusion matrix");
    }

    [TestMethod]
    public void BadZeroShotEvalOptionsAreUsageErrors()
    {
        using var folder = new TempDirectory();
        foreach (string name in new[] { "cat", "dog", "car" })
        {
            Directory.CreateDirectory(Path.Combine(folder.Path, name));
            File.WriteAllBytes(Path.Combine(folder.Path, name, "a.png"),
                Convert.FromBase64String("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="));
        }
        StringAssert.Contains(CliHost.FailOneLine(2, "eval", "--model", "ViT-B-32", "--model-file", "m.zip", "--data", folder.Path), "not both");
        StringAssert.Contains(CliHost.FailOneLine(2, "eval", "--model", "ViT-B-32"), "needs --data");
        string uncovered = CliHost.FailOneLine(2, "eval", "--model", "ViT-B-32", "--labels", "cat,dog", "--data", folder.Path);
        StringAssert.Contains(uncovered, "does not cover");
        StringAssert.Contains(uncovered, "'car'");
        StringAssert.Contains(CliHost.FailOneLine(2, "eval", "--labels", "cat,dog,car", "--data", folder.Path), "give --model too");
        StringAssert.Contains(CliHost.FailOneLine(2, "eval", "--model", "ViT-B-32", "--data", folder.Path, "--template", "a cat"), "has no '{}'");
        StringAssert.Contains(CliHost.FailOneLine(2, "eval", "--model", "ViT-B-32", "--data", folder.Path, "--topk", "4"), "exceeds the 3 labels");
        StringAssert.Contains(CliHost.FailOneLine(2, "eval", "--model", "ViT-B-32", "--data", folder.Path, "--precision", "bfloat16"), "--precision applies to --model-file");
        StringAssert.Contains(CliHost.FailOneLine(2, "eval", "--model", "ViT-Z-9", "--data", folder.Path), "unknown CLIP model");
    }
}
