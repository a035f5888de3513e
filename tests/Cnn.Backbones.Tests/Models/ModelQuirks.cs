namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// What the registry-driven model tests need to know about one model beyond its registration: one row per model or family in
/// <see cref="ModelQuirksTable"/>, most models have none. Every field says why it exists.
/// </summary>
internal sealed record ModelQuirks
{
    /// <summary>Input side of the contract and parity tests (small, so every model runs quickly; at least the model's minimum).</summary>
    public int TestSize { get; init; } = 64;

    /// <summary><c>ModelOptions.ImageSize</c> that lets the model take <see cref="TestSize"/> inputs (ViT's position embedding).</summary>
    public int? ImageSize { get; init; }

    /// <summary>Parity input side when the reference only accepts one size (torchvision's ViT: its image_size); else <see cref="TestSize"/>.</summary>
    public int? ParitySize { get; init; }

    /// <summary>
    /// Input side of the ONNX import tests, when neither <see cref="ParitySize"/> nor <see cref="TestSize"/> imports: torch.onnx
    /// exports adaptive pooling only where its output size divides its input, and where it does not, our exporter writes the
    /// pooling as a MatMul with a constant matrix, which the importer does not pair (it takes it for a linear layer).
    /// </summary>
    public int? ExportSize { get; init; }

    /// <summary>
    /// Why <c>OnnxImporter</c> cannot import the model's ONNX export yet (the import test then checks that it refuses with a message
    /// naming the parameter it cannot pair), or null: it imports.
    /// </summary>
    public string? NoOnnxImport { get; init; }

    /// <summary>
    /// Why <c>OnnxImporter</c> cannot import torch.onnx's export of the model's reference (while our own export imports), or null:
    /// <see cref="NoOnnxImport"/> applies. The import test then checks the refusal names the parameter.
    /// </summary>
    public string? NoReferenceOnnxImport { get; init; }

    /// <summary>
    /// Why the model's numerical parity is left to a sibling that runs the same code (a larger copy, or only another activation),
    /// or null: <c>ModelParityTests</c> compares it with its reference.
    /// </summary>
    public string? ParityBySibling { get; init; }

    /// <summary>Parity batch size (1 for the large-input ViTs, to keep the fixtures small).</summary>
    public int ParityBatch { get; init; } = 2;

    /// <summary>Further parity input sides (another code path: LeNet-5's 28×28 padding, ResNet-50 at its pretrained 224).</summary>
    public IReadOnlyList<int> ExtraParitySizes { get; init; } = [];

    /// <summary>Option variants tested as specs of their own (<c>name+flag</c>, see <see cref="ModelSpec"/>).</summary>
    public IReadOnlyList<string> Variants { get; init; } = [];

    /// <summary>Auxiliary classifiers (module names) that <c>ResetClassifier</c> replaces together with the main one.</summary>
    public IReadOnlyList<string> AuxClassifiers { get; init; } = [];

    /// <summary>A second image size whose model loads the parity weights with a resampled position embedding (ViT).</summary>
    public int? ResampleSize { get; init; }

    /// <summary>Input side for checking each stage's nominal reduction, where <see cref="TestSize"/> shrinks the last maps too far.</summary>
    public int? StageCheckSize { get; init; }

    /// <summary>The input side the model's reductions refer to, when it is not the input itself (LeNet-5: the 28×28 it pads).</summary>
    public int? ReductionInput { get; init; }

    /// <summary>Why the model has no torchvision IMAGENET1K_V1 weights to check its pretrained configuration against, or null.</summary>
    public string? NoTorchvisionWeights { get; init; }

    /// <summary>Why the model's <c>MinInputSize</c> differs from torchvision's stated <c>min_size</c>, or null (they must agree).</summary>
    public string? MinSizeDiffers { get; init; }
}

/// <summary>The per-model quirks of the registry-driven tests: a row by model name, else by family, else none.</summary>
internal static class ModelQuirksTable
{
    private static readonly ModelQuirks None = new();

    /// <summary>
    /// The forward-pass contract tests (features-only stages, head reset) skip models above this many parameters: each is a larger
    /// copy of code its family's smaller variants run (ViT-L next to ViT-B, ConvNeXt-Large next to Tiny/Small/Base), and building
    /// and running it costs more CPU time than it adds. Architecture and parity tests still cover them.
    /// </summary>
    public const long ForwardContractMaxParameters = 150_000_000;

    private const string MinSizeLeftToTheLayers =
        "torchvision states a min_size, but the model leaves the size check to its layers (MinInputSize 1); changing it would change behaviour";

    private static readonly ModelQuirks Vit = new()
    {
        ImageSize = 64,
        ParitySize = 224,
        ParityBatch = 1,
        MinSizeDiffers = "a ViT takes exactly its ImageSize; the size is checked against ImageSize, not MinInputSize",
        NoOnnxImport = "self_attention.in_proj_weight: the attention's packed input projection runs as a MatMul with the transposed " +
                       "weight, not through a module the importer hooks, so the importer cannot pair it (nor the class token, fed to Expand)",
    };

    private static readonly ModelQuirks Clip = new()
    {
        ImageSize = 64,
        ParitySize = 224,
        ParityBatch = 1,
        NoTorchvisionWeights = "CLIP's image towers are OpenCLIP's; the reference is OpenCLIP's own tower (random weights) with a linear head",
        // The family's smallest model (the one the import suites run) is clip_rn50; its ViT towers stop at ViT's packed attention.
        NoReferenceOnnxImport = "visual.attnpool.positional_embedding: the ResNet tower's attention pool adds its position embedding and runs " +
                       "multi-head attention as plain MatMuls, outside the layers the importer pairs along the data flow",
    };

    private const string ClipB16 =
        "clip_vit_b32 and clip_vit_b32_quickgelu run the same tower code with another patch size (compared stage by stage here), and " +
        "ClipModelParityTests compares ViT-B-16's encode_image with OpenCLIP's";

    private const string ClipL14 =
        "ViT-L-14's tower is ViT-B-32's code at 24 blocks of width 1024 and patch 14 (clip_vit_b32 is compared); its keys, shapes and a forward " +
        "pass are checked against OpenCLIP by ClipModelStructureTests (and the architecture tests here), and building, saving and comparing 300M parameters costs 4 minutes";

    private static readonly Dictionary<string, ModelQuirks> Rows = new(StringComparer.OrdinalIgnoreCase)
    {
        ["lenet5"] = new()
        {
            TestSize = 32,
            ExtraParitySizes = [28],
            ReductionInput = 28,
            NoTorchvisionWeights = "LeNet-5 (1998) has no torchvision model; its reference is a plain PyTorch definition of the design",
        },
        ["alexnet"] = new() { StageCheckSize = 224, ExportSize = 224 }, // its last map is 1×1 at 64×64, too small for a nominal reduction
        ["vgg"] = new() { ExportSize = 224 }, // a 2×2 map at 64×64 does not pool adaptively to 7×7 in torch.onnx
        ["googlenet"] = new() { Variants = ["aux", "notransform"] },
        ["inception_v3"] = new() { TestSize = 75, StageCheckSize = 299, Variants = ["noaux"], AuxClassifiers = ["AuxLogits.fc"] },
        ["resnet18"] = new() { Variants = ["blocks-2-2-2-3"] }, // issue #11: ML.NET's ResNet-18 featurizer has 3 blocks in layer4
        ["resnet50"] = new() { ExtraParitySizes = [224] },
        ["seresnet"] = new() { NoTorchvisionWeights = "timm's SE-ResNet has no torchvision model; its reference is torchvision's ResNet with timm's SE modules" },
        ["convnext"] = new() { MinSizeDiffers = MinSizeLeftToTheLayers },
        ["efficientnet_v2_s"] = new() { MinSizeDiffers = MinSizeLeftToTheLayers },
        ["efficientnet_v2_m"] = new() { MinSizeDiffers = MinSizeLeftToTheLayers },
        ["efficientnet_v2_l"] = new() { MinSizeDiffers = MinSizeLeftToTheLayers },
        ["vit"] = Vit,
        ["clip"] = Clip,
        ["vit_b_16"] = Vit with { ResampleSize = 160 },
        ["clip_vit_l14"] = Clip with { ParityBySibling = ClipL14 },
        ["clip_vit_l14_quickgelu"] = Clip with { ParityBySibling = ClipL14 },
        ["clip_vit_b16"] = Clip with { ParityBySibling = ClipB16 },
        ["clip_vit_b16_quickgelu"] = Clip with { ParityBySibling = ClipB16 },
    };

    /// <summary>The quirks of a model: its own row, else its family's, else none.</summary>
    public static ModelQuirks For(string name, string family) =>
        Rows.GetValueOrDefault(name) ?? Rows.GetValueOrDefault(family) ?? None;
}
