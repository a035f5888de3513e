using Cnn.Backbones.Models;
using TorchSharp;

namespace Cnn.Examples.GuideSnippets;

/// <summary>The snippets of docs/guides/backbones.md.</summary>
internal static class Backbones
{
    /// <summary>timm's hooks on a registered model.</summary>
    public static void Hooks(torch.Tensor images)
    {
        #region hooks
        using var model = ModelRegistry.Create("resnet50", new ModelOptions { NumClasses = 10 });
        using var features = model.ForwardFeatures(images);              // the last feature map: [N, 2048, H/32, W/32]
        using var pooled = model.ForwardHead(features, preLogits: true); // the pooled vector: [N, 2048] (model.NumFeatures)
        using var logits = model.ForwardHead(features);                  // [N, 10]
        model.ResetClassifier(5);                                        // a new head for 5 classes (0: no classifier)
        foreach (var info in model.FeatureInfo)                          // one entry per stage: channels, reduction, module
            Console.WriteLine($"{info.ModuleName}: {info.NumChannels} channels, 1/{info.Reduction}");
        #endregion
    }

    /// <summary>A features-only model, as timm's features_only=True.</summary>
    public static void FeaturesOnly(torch.Tensor images)
    {
        #region featuresonly
        using var model = ModelRegistry.Create("convnext_tiny", new ModelOptions { FeaturesOnly = true, OutIndices = [1, 2, 3] });
        var maps = model.ForwardStages(images);   // the maps of stages 1, 2 and 3 (model.OutFeatureInfo describes them)
        foreach (var map in maps)
        {
            Console.WriteLine(string.Join("×", map.shape));
            map.Dispose();
        }
        #endregion
    }
}
