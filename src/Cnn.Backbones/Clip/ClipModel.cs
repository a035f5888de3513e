using Cnn.Backbones.Native;
using Cnn.Backbones.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cnn.Backbones.Clip;

/// <summary>
/// A CLIP model with OpenCLIP's state-dict keys: the image tower <c>visual</c>, the text tower (<c>token_embedding</c>,
/// <c>positional_embedding</c>, <c>transformer</c> with a causal mask, <c>ln_final</c>, <c>text_projection</c>, pooled at the
/// end-of-text token) and <c>logit_scale</c>. OpenCLIP checkpoints load as they are (<see cref="LoadWeights(string)"/>).
/// </summary>
/// <remarks>Float32 on the CPU (or wherever <c>to()</c> moves it). Call <c>eval()</c> before inference (the ResNet tower has
/// BatchNorm); <see cref="Create(string)"/> returns the model in eval mode.</remarks>
public sealed class ClipModel : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly ClipImageTower visual;
    private readonly Embedding token_embedding;
    private readonly Parameter positional_embedding;
    private readonly ClipTransformer transformer;
    private readonly LayerNorm ln_final;
    private readonly Parameter text_projection;
    private readonly Parameter logit_scale;

    /// <summary>Builds the model with OpenAI CLIP's random initialisation.</summary>
    /// <param name="config">The configuration (see <see cref="ClipModels"/>).</param>
    public ClipModel(ClipModelConfig config) : base("CLIP")
    {
        ArgumentNullException.ThrowIfNull(config);
        Config = config;
        visual = config.Vision.IsResNet
            ? new ClipModifiedResNet(config.Vision, config.EmbedDim)
            : new ClipVisionTransformer(config.Vision, config.EmbedDim, config.QuickGelu);
        var text = config.Text;
        token_embedding = nn.Embedding(text.VocabularySize, text.Width);
        positional_embedding = new Parameter(empty(text.ContextLength, text.Width));
        transformer = new ClipTransformer(text.Width, text.Layers, text.Heads, text.MlpRatio, config.QuickGelu, causal: true);
        ln_final = nn.LayerNorm(text.Width);
        text_projection = new Parameter(empty(text.Width, config.EmbedDim));
        logit_scale = new Parameter(tensor((float)Math.Log(1 / 0.07)));
        RegisterComponents();
        using (no_grad())
        {
            nn.init.normal_(token_embedding.weight!, 0, 0.02);
            nn.init.normal_(positional_embedding, 0, 0.01);
            nn.init.normal_(text_projection, 0, Math.Pow(text.Width, -0.5));
            transformer.Initialize();
        }
    }

    /// <summary>Builds the named model (see <see cref="ClipModels.Names"/>) in eval mode.</summary>
    /// <param name="name">e.g. <c>ViT-B-32</c>.</param>
    public static ClipModel Create(string name)
    {
        return Create(ClipModels.Get(name));
    }

    /// <summary>Builds the model of <paramref name="config"/> in eval mode.</summary>
    /// <param name="config">Any configuration this library builds, e.g. one read by <see cref="OpenClipConfig.Load"/>.</param>
    public static ClipModel Create(ClipModelConfig config)
    {
        var model = new ClipModel(config);
        model.eval();
        return model;
    }

    /// <summary>The configuration the model was built from.</summary>
    public ClipModelConfig Config { get; }

    /// <summary>The image tower (OpenCLIP's <c>visual</c>).</summary>
    public ClipImageTower Visual => visual;

    /// <summary>The learnt temperature's logarithm; logits are exp(logit_scale) · cosine similarity.</summary>
    public Tensor LogitScale => logit_scale;

    /// <summary>Image embeddings [N, EmbedDim] of normalised images [N, 3, S, S] (CLIP's mean and std, S = image size).</summary>
    /// <param name="images">Normalised images.</param>
    /// <param name="normalize">Divide each embedding by its L2 norm.</param>
    public Tensor EncodeImage(Tensor images, bool normalize = false)
    {
        ArgumentNullException.ThrowIfNull(images);
        using var scope = NewDisposeScope();
        var features = visual.call(images);
        return (normalize ? Normalize(features) : features).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Text embeddings [N, EmbedDim] of token ids [N, 77] (<see cref="ClipTokenizer.Tokenize"/>): token plus position embedding,
    /// the causal transformer, <c>ln_final</c>, the token at each row's largest id (the end-of-text token), <c>text_projection</c>.
    /// </summary>
    /// <param name="ids">Token ids (int64).</param>
    /// <param name="normalize">Divide each embedding by its L2 norm.</param>
    public Tensor EncodeText(Tensor ids, bool normalize = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (ids.dim() != 2 || ids.shape[1] != Config.Text.ContextLength)
            throw new ArgumentException($"Token ids must be [N, {Config.Text.ContextLength}]; got [{string.Join(", ", ids.shape)}]. Use ClipTokenizer.Tokenize.", nameof(ids));
        using var scope = NewDisposeScope();
        var device = positional_embedding.device;
        ids = ids.to(device);
        long n = ids.shape[0], width = Config.Text.Width;
        var x = token_embedding.call(ids).Plus(positional_embedding);
        x = ln_final.call(transformer.call(x));
        var end = ids.argmax(-1).reshape(n, 1, 1).expand(n, 1, width);
        var features = x.gather(1, end).squeeze(1).matmul(text_projection);
        return (normalize ? Normalize(features) : features).MoveToOuterDisposeScope();
    }

    /// <summary>Tokenizes <paramref name="texts"/> with <see cref="ClipTokenizer.Default"/> and encodes them.</summary>
    /// <param name="texts">The texts.</param>
    /// <param name="normalize">Divide each embedding by its L2 norm.</param>
    /// <param name="warn">Receives a warning for each text cut to 77 tokens; null to ignore.</param>
    public Tensor EncodeText(IReadOnlyList<string> texts, bool normalize = false, Action<string>? warn = null)
    {
        var tokens = ClipTokenizer.Default.Tokenize(texts);
        foreach (int i in tokens.Truncated)
            warn?.Invoke($"Text {i} ('{Shorten(texts[i])}') is longer than {tokens.ContextLength} tokens; it was truncated, as OpenCLIP does.");
        using var ids = tokens.ToTensor();
        return EncodeText(ids, normalize);
    }

    /// <summary>Image-to-text logits [images, texts]: exp(logit_scale) · cosine similarity.</summary>
    /// <param name="images">Normalised images.</param>
    /// <param name="ids">Token ids.</param>
    public override Tensor forward(Tensor images, Tensor ids)
    {
        using var scope = NewDisposeScope();
        var image = EncodeImage(images, normalize: true);
        var text = EncodeText(ids, normalize: true);
        return image.matmul(text.t()).mul(logit_scale.exp()).MoveToOuterDisposeScope();
    }

    /// <summary>Loads an OpenCLIP checkpoint (<c>.bin</c>/<c>.pt</c>/<c>.pth</c> state dict or <c>.safetensors</c>).</summary>
    /// <param name="path">The weight file.</param>
    /// <exception cref="ClipWeightsException">The file holds another tower or size; the message names what it holds.</exception>
    public void LoadWeights(string path)
    {
        using var weights = WeightFile.Load(path);
        LoadWeights(weights, path);
    }

    /// <summary>Loads OpenCLIP weights (a leading <c>module.</c> from distributed training is dropped).</summary>
    /// <param name="weights">The state dict; not modified or disposed.</param>
    /// <param name="source">Where the weights came from, for messages.</param>
    /// <exception cref="ClipWeightsException">The weights hold another tower or size.</exception>
    public void LoadWeights(StateDict weights, string source = "the state dict")
    {
        ArgumentNullException.ThrowIfNull(weights);
        using var prepared = ClipWeights.Prepare(weights);
        ClipWeights.CheckFits(prepared, Config, source);
        try
        {
            StateDictLoader.Load(this, prepared, strict: true);
        }
        catch (WeightLoadException e)
        {
            throw new ClipWeightsException($"The CLIP weights in {source} do not fit {Config.Name}: {e.Report.Describe(10, "; ")}.", e);
        }
    }

    private static Tensor Normalize(Tensor x) => x.div(x.norm(1, keepdim: true));

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..37] + "...";
}
