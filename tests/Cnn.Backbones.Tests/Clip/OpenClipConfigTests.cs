using Cnn.Backbones.Clip;
using Cnn.Tests.Shared;

namespace Cnn.Backbones.Tests.Clip;

/// <summary>
/// <see cref="OpenClipConfig"/> against OpenCLIP's own model-config files (../shared/reference/open_clip, read at test time):
/// ours parse to exactly our <see cref="ClipModels"/> entries, the rest parse or are refused naming the file, and damaged or
/// custom configurations are refused clearly.
/// </summary>
[TestClass]
public sealed class OpenClipConfigTests
{
    private static string ConfigFolder => Path.Combine(OpenClipReference.Folder, "open_clip", "open_clip", "model_configs");

    [TestMethod]
    public void OpenClipsModelConfigsOfOurModelsParseToExactlyOurEntries()
    {
        foreach (var ours in ClipModels.All)
        {
            string path = Path.Combine(ConfigFolder, ours.Name + ".json");
            Assert.IsTrue(File.Exists(path), $"OpenCLIP has no {path}");
            var parsed = OpenClipConfig.ParseModelAsWritten(File.ReadAllText(path), path, "as written");
            Assert.AreEqual(ours.EmbedDim, parsed.EmbedDim, $"{ours.Name} embed_dim");
            Assert.AreEqual(ours.QuickGelu, parsed.QuickGelu, $"{ours.Name} quick_gelu");
            Assert.AreEqual(ours.Vision.ImageSize, parsed.Vision.ImageSize, $"{ours.Name} vision image_size");
            CollectionAssert.AreEqual(ours.Vision.Layers.ToArray(), parsed.Vision.Layers.ToArray(), $"{ours.Name} vision layers");
            Assert.AreEqual(ours.Vision.Width, parsed.Vision.Width, $"{ours.Name} vision width");
            Assert.AreEqual(ours.Vision.PatchSize, parsed.Vision.PatchSize, $"{ours.Name} vision patch_size");
            Assert.AreEqual(ours.Vision.HeadWidth, parsed.Vision.HeadWidth, $"{ours.Name} vision head_width");
            Assert.AreEqual(ours.Vision.MlpRatio, parsed.Vision.MlpRatio, $"{ours.Name} vision mlp_ratio");
            Assert.AreEqual(ours.Vision.Heads, parsed.Vision.Heads, $"{ours.Name} vision heads");
            Assert.AreEqual(ours.Text.ContextLength, parsed.Text.ContextLength, $"{ours.Name} text context_length");
            Assert.AreEqual(ours.Text.VocabularySize, parsed.Text.VocabularySize, $"{ours.Name} text vocab_size");
            Assert.AreEqual(ours.Text.Width, parsed.Text.Width, $"{ours.Name} text width");
            Assert.AreEqual(ours.Text.Heads, parsed.Text.Heads, $"{ours.Name} text heads");
            Assert.AreEqual(ours.Text.Layers, parsed.Text.Layers, $"{ours.Name} text layers");
            Assert.AreEqual(ours.Text.MlpRatio, parsed.Text.MlpRatio, $"{ours.Name} text mlp_ratio");

            // Read as a whole file, the configuration takes the registered entry's name, with OpenCLIP's default preprocessing.
            var loaded = OpenClipConfig.Load(path, "hf-hub:x/y");
            Assert.AreEqual(ours.Name, loaded.Model.Name);
            Assert.AreSame(ClipPreprocessConfig.OpenAi, loaded.Preprocess);
        }
    }

    [TestMethod]
    public void EveryOpenClipModelConfigParsesOrIsRefusedNamingItsFile()
    {
        var files = Directory.GetFiles(ConfigFolder, "*.json");
        Assert.IsTrue(files.Length > 100, $"expected OpenCLIP's model configs in {ConfigFolder}");
        var parsed = new List<string>();
        foreach (string file in files)
        {
            try
            {
                var config = OpenClipConfig.Load(file);
                parsed.Add(Path.GetFileNameWithoutExtension(file));
                if (ClipModels.Contains(Path.GetFileNameWithoutExtension(file))) Assert.AreEqual(Path.GetFileNameWithoutExtension(file), config.Model.Name, file);
            }
            catch (ClipConfigException e)
            {
                StringAssert.Contains(e.Message, file);
            }
        }
        // Plain CLIPs of other sizes parse too (e.g. ViT-H-14's 80-wide heads); towers this library does not build do not.
        CollectionAssert.IsSubsetOf(new[] { "ViT-B-32", "RN50-quickgelu", "ViT-H-14", "RN101", "ViT-B-32-256" }, parsed);
        var h14 = OpenClipConfig.Load(Path.Combine(ConfigFolder, "ViT-H-14.json")).Model;
        Assert.AreEqual(80, h14.Vision.HeadWidth);
        Assert.AreEqual(16, h14.Vision.Heads);
        foreach (string refused in new[] { "convnext_base", "xlm-roberta-base-ViT-B-32", "coca_ViT-B-32", "ViT-B-16-SigLIP", "EVA02-B-16" })
            CollectionAssert.DoesNotContain(parsed, refused);
        StringAssert.Contains(Assert.ThrowsExactly<ClipConfigException>(() => OpenClipConfig.Load(Path.Combine(ConfigFolder, "convnext_base.json"))).Message, "timm image tower");
        StringAssert.Contains(Assert.ThrowsExactly<ClipConfigException>(() => OpenClipConfig.Load(Path.Combine(ConfigFolder, "xlm-roberta-base-ViT-B-32.json"))).Message, "Hugging Face text tower");
    }

    [TestMethod]
    public void HubConfigsAreReadWithTheirPreprocessingAndBadOnesAreRefusedNamingTheFile()
    {
        using var temp = new TempDirectory();
        string path = temp.File("open_clip_config.json");
        File.WriteAllText(path, """
            {"model_cfg": {"embed_dim": 512, "quick_gelu": true, "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 32},
              "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12}},
             "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "interpolation": "bilinear", "resize_mode": "shortest"}}
            """);
        var config = OpenClipConfig.Load(path, "hf-hub:timm/vit_base_patch32_clip_224.openai");
        Assert.AreEqual("ViT-B-32-quickgelu", config.Model.Name);
        CollectionAssert.AreEqual(new[] { 0.5f, 0.5f, 0.5f }, config.Preprocess.Mean.ToArray());
        CollectionAssert.AreEqual(new[] { 0.25f, 0.25f, 0.25f }, config.Preprocess.Std.ToArray());
        Assert.IsTrue(config.Preprocess.Bilinear);
        var again = OpenClipConfig.Parse(config.ToJson(), "round trip");
        Assert.IsTrue(OpenClipConfig.SameModel(config.Model, again.Model));
        Assert.AreEqual("ViT-B-32-quickgelu", again.Model.Name);
        CollectionAssert.AreEqual(config.Preprocess.Mean.ToArray(), again.Preprocess.Mean.ToArray());
        Assert.AreEqual(config.Preprocess.Interpolation, again.Preprocess.Interpolation);

        void Refused(string json, string expected)
        {
            File.WriteAllText(path, json);
            var error = Assert.ThrowsExactly<ClipConfigException>(() => OpenClipConfig.Load(path), json);
            StringAssert.Contains(error.Message, path);
            StringAssert.Contains(error.Message, expected);
        }
        const string Text = "\"text_cfg\": {\"width\": 512, \"heads\": 8, \"layers\": 12}";
        Refused("{\"model_cfg\": {\"embed_dim\": 512, \"vision_cfg\": {\"timm_model_name\": \"convnext_base\"}, " + Text + "}}", "timm image tower");
        Refused("{\"model_cfg\": {\"embed_dim\": 512, \"vision_cfg\": {\"layers\": 12}, \"text_cfg\": {\"hf_model_name\": \"xlm-roberta-base\"}}}", "Hugging Face text tower");
        Refused("{\"model_cfg\": {\"embed_dim\": 512, \"vision_cfg\": {\"layers\": 12, \"ls_init_value\": 1e-5}, " + Text + "}}", "vision_cfg.ls_init_value");
        Refused("{\"model_cfg\": {\"embed_dim\": 512, \"vision_cfg\": {\"layers\": 12, \"pool_type\": \"avg\"}, " + Text + "}}", "vision_cfg.pool_type");
        Refused("{\"model_cfg\": {\"embed_dim\": 512, \"vision_cfg\": {\"layers\": 12}, \"text_cfg\": {\"no_causal_mask\": true}}}", "text_cfg.no_causal_mask");
        Refused("{\"model_cfg\": {\"embed_dim\": 512, \"vision_cfg\": {\"layers\": 12}, " + Text + ", \"multimodal_cfg\": {}}}", "model_cfg.multimodal_cfg");
        Refused("{\"model_cfg\": {\"vision_cfg\": {\"layers\": 12}, " + Text + "}}", "no model_cfg.embed_dim");
        Refused("{\"model_cfg\": {\"embed_dim\": 512, \"vision_cfg\": {\"layers\": 12}, " + Text + "}, \"preprocess_cfg\": {\"resize_mode\": \"squash\"}}", "resize_mode 'squash'");
        Refused("{\"model_cfg\": {\"embed_dim\": 512, \"vision_cfg\": {\"layers\": 12}, " + Text + "}, \"preprocess_cfg\": {\"mean\": [0.5, 0.5]}}", "RGB needs 3");
        Refused("{\"model_cfg\": {\"embed_dim\": 512, \"vision_cfg\": {\"layers\": 12, \"image_size\": 100, \"patch_size\": 32}, " + Text + "}}", "not divisible by patch_size");
        Refused("{\"model_cfg\": ", "not valid JSON");
    }
}
