using Cnn.Backbones.Clip;

namespace Cnn.MLNet.Clip;

/// <summary>Which CLIP model to run and with which weights; shared by the CLIP transforms.</summary>
public class ClipModelOptions
{
    /// <summary>
    /// OpenCLIP's model name (see <see cref="ClipModels.Names"/>), or a hub name such as
    /// <c>hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K</c> whose <c>open_clip_config.json</c> gives the model and its preprocessing
    /// (as OpenCLIP's <c>create_model('hf-hub:…')</c>); the hub's checkpoint is then the weights unless <see cref="WeightsPath"/>
    /// names others. Default <c>ViT-B-32</c>.
    /// </summary>
    public string ModelName { get; set; } = "ViT-B-32";

    /// <summary>
    /// An OpenCLIP checkpoint (<c>open_clip_pytorch_model.bin</c>, <c>open_clip_model.safetensors</c> or a <c>.pt</c> state dict),
    /// or a hub name such as <c>hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K</c> (downloaded once into the hub's cache; its
    /// <c>open_clip_config.json</c> must describe <see cref="ModelName"/>). Null: the hub model's own weights when
    /// <see cref="ModelName"/> is a hub name, else random weights (only useful for tests).
    /// </summary>
    public string? WeightsPath { get; set; }

    /// <summary>Images per forward pass. Default 16.</summary>
    public int BatchSize { get; set; } = 16;

    /// <summary>Receives warnings (e.g. a prompt cut to 77 tokens); null writes nothing.</summary>
    public Action<string>? Warn { get; set; }

    internal virtual void Validate()
    {
        if (!ClipModelSource.IsModel(ModelName)) throw new ArgumentException(ClipModelSource.UnknownModelMessage(ModelName), nameof(ModelName));
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "BatchSize must be at least 1.");
        if (WeightsPath is not null && !Backbones.Weights.Download.HubModelId.IsHubName(WeightsPath) && !File.Exists(WeightsPath))
            throw new FileNotFoundException($"CLIP weight file '{WeightsPath}' does not exist. Pass an OpenCLIP checkpoint (open_clip_pytorch_model.bin, open_clip_model.safetensors or a .pt state dict).", WeightsPath);
    }

    /// <summary>The embedding width of the model (a hub model's configuration is downloaded once to read it).</summary>
    internal int EmbedDim() =>
        ClipModels.Contains(ModelName) ? ClipModels.Get(ModelName).EmbedDim : ClipModelSource.Resolve(ModelName, WeightsPath).Config.Model.EmbedDim;
}

/// <summary>Options of <c>mlContext.Transforms.ZeroShotClassify</c>.</summary>
public sealed class ClipZeroShotOptions : ClipModelOptions
{
    /// <summary>The image column (a file path, encoded bytes or an ML.NET image). Default <c>Image</c>.</summary>
    public string ImageColumnName { get; set; } = "Image";

    /// <summary>The class-probability column (softmax of the scaled cosine similarities). Default <c>Score</c>.</summary>
    public string ScoreColumnName { get; set; } = "Score";

    /// <summary>The predicted class, a key whose key values are the labels. Default <c>PredictedLabel</c>.</summary>
    public string PredictedLabelColumnName { get; set; } = "PredictedLabel";
}

/// <summary>Options of <c>ExtractClipImageEmbeddings</c> and <c>ExtractClipTextEmbeddings</c>.</summary>
public sealed class ClipEmbeddingOptions : ClipModelOptions
{
    /// <summary>The input column: images for the image embeddings, text for the text embeddings.</summary>
    public string InputColumnName { get; set; } = "Image";

    /// <summary>The embedding column (a float vector of the model's embedding width). Default <c>Embedding</c>.</summary>
    public string OutputColumnName { get; set; } = "Embedding";

    /// <summary>Divide each embedding by its L2 norm (cosine similarity becomes a dot product). Default true.</summary>
    public bool Normalize { get; set; } = true;
}
