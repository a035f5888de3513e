using Cnn.Backbones.Models;
using Cnn.MLNet;
using Cnn.Backbones.Weights;
using Cnn.Backbones.Weights.Catalog;
using TorchSharp;

namespace Cnn.Examples.GuideSnippets;

/// <summary>The snippets of docs/guides/pretrained-weights.md.</summary>
internal static class Weights
{
    /// <summary>Asks for published weights by name.</summary>
    public static CnnTrainerOptions ByName() =>
        #region byname
        new CnnTrainerOptions
        {
            Model = new() { Weights = "IMAGENET1K_V2" },   // or "DEFAULT", "hf-hub:timm/resnet50.a1_in1k", or a file path
        };
        #endregion

    /// <summary>Registers weights of one's own so they are asked for by name.</summary>
    public static void Register()
    {
        #region register
        WeightsCatalog.Register("resnet50", new WeightsEntry(
            "ACME_V1", "https://models.example.com/resnet50-acme-3f2c6a1e.safetensors",   // the file name carries its SHA-256 prefix
            WeightsCatalog.Find("resnet50", "IMAGENET1K_V2").Config,                       // the preprocessing it was trained with
            new WeightsMetadata(ParameterCount: 25_557_032, Acc1: double.NaN, Acc5: double.NaN, Recipe: "", Categories: [])));
        var options = new CnnTrainerOptions { Model = new() { Weights = "ACME_V1" } };
        #endregion
        Console.WriteLine(options.Model.Weights);
    }

    /// <summary>Reads a weight file and loads it into a model.</summary>
    public static void LoadFile(string path)
    {
        #region files
        using var model = ModelRegistry.Create("resnet18");
        using var weights = WeightFile.Load(path);                          // .pth, .safetensors or .onnx: detected from content
        var report = StateDictLoader.Load(model, weights);                  // strict: throws WeightLoadException, model untouched
        var partial = StateDictLoader.Load(model, weights, strict: false);  // loads what fits; the report lists the rest
        SafeTensors.Write("resnet18.safetensors", weights);                 // convert to safetensors
        #endregion
        Console.WriteLine($"{report} / {partial}");
    }

    /// <summary>Builds a backbone from a weight file with another head.</summary>
    public static void Backbone(torch.Tensor images)
    {
        #region backbone
        using var model = ModelRegistry.Create("resnet50", new ModelOptions
        {
            NumClasses = 10,                       // the 1000-class head of the file is replaced by a new 10-class one
            WeightsPath = "resnet50-11ad3fa6.pth", // torchvision's IMAGENET1K_V2 file (see the weights table)
        });
        model.FreezeUpTo(2);                       // stem, layer1, layer2: no gradients, BatchNorm kept in eval mode
        using var logits = model.forward(images);  // [N, 10]; images are [N, 3, H, W], normalised
        var maps = model.ForwardStages(images);    // act1, layer1 … layer4 (choose with ModelOptions.OutIndices)
        #endregion
        foreach (var map in maps) map.Dispose();
    }
}
