using Cnn.Backbones.Clip;
using Cnn.MLNet.Clip;
using Cnn.MLNet.Data;

namespace Cnn.Cli.Commands;

/// <summary>What <c>cnn zero-shot</c> and <c>cnn embed</c> share: the CLIP model options and batched image encoding.</summary>
internal static class ClipCli
{
    public static CliOption Model { get; } = new("--model", $"CLIP model (default ViT-B-32; {string.Join(", ", ClipModels.Names)}), or an hf-hub: name whose open_clip_config.json gives the model, preprocessing and weights", "<name>", "-m");

    public static CliOption Weights { get; } = new("--weights", "OpenCLIP checkpoint (open_clip_pytorch_model.bin, open_clip_model.safetensors or a .pt state dict) or an hf-hub: name; without, an hf-hub: model's own weights, else random weights", "<file>", "-w");

    public static CliOption BatchSize { get; } = CommonOptions.BatchSize("images per forward pass (default 16)");

    public static CliOption Labels(string when) => new("--labels", $"comma-separated class names, e.g. \"cat,dog,car\" ({when})", "<a,b,...>", "-l");

    public static CliOption Template { get; } =
        new("--template", $"prompt with {{}} for the label (default \"{ClipZeroShotClassifier.DefaultTemplate}\"); separate several with '|'", "<text>", "-t");

    /// <summary>The class names of <c>--labels</c>, or null when it is not given; a usage error when it is empty.</summary>
    public static string[]? LabelsOf(CliArguments arguments)
    {
        if (arguments.String("--labels") is not { } text) return null;
        var labels = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        return labels.Length > 0 ? labels : throw new CliUsageException("--labels is empty: give comma-separated class names, e.g. --labels \"cat,dog,car\"");
    }

    /// <summary>The prompt templates of <c>--template</c> (default CLIP's one).</summary>
    public static string[] TemplatesOf(CliArguments arguments) =>
        (arguments.String("--template") ?? ClipZeroShotClassifier.DefaultTemplate).Split('|', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    /// <summary>Checks labels and templates as the classifier will (a usage error naming the first problem).</summary>
    public static void CheckPrompts(IReadOnlyList<string> labels, IReadOnlyList<string> templates)
    {
        try
        {
            ClipZeroShotClassifier.Validate(labels, templates);
        }
        catch (ArgumentException e)
        {
            throw new CliUsageException(UserMessage.Of(e));
        }
    }

    /// <summary>The checked model name or hf-hub: name (a usage error names the known ones).</summary>
    public static string ModelName(CliArguments arguments)
    {
        string name = (arguments.String("--model") ?? "ViT-B-32").Trim();
        if (Cnn.Backbones.Weights.Download.HubModelId.IsHubName(name))
            return Cnn.Backbones.Weights.Download.HubModelId.TryParse(name, out _) ? name : throw new CliUsageException($"--model '{name}' is not a valid hub name; write hf-hub:org/name[@revision]");
        if (!ClipModels.Contains(name))
            throw new CliUsageException($"unknown CLIP model '{name}'; known: {string.Join(", ", ClipModels.Names)}, or an hf-hub: name with an open_clip_config.json");
        return ClipModels.Get(name).Name;
    }

    /// <summary>The weights path, checked to exist; warns when there is none (and the model is no hub name, which brings its own).</summary>
    public static string? WeightsPath(CliArguments arguments, string model, TextWriter stderr)
    {
        string? weights = arguments.String("--weights");
        if (weights is null && Cnn.Backbones.Weights.Download.HubModelId.IsHubName(model)) return null;
        if (weights is null)
            stderr.WriteLine($"cnn: warning: no --weights given: {model} has random weights, so its outputs are meaningless. Give an OpenCLIP checkpoint with --weights.");
        else if (!Cnn.Backbones.Weights.Download.HubModelId.IsHubName(weights) && !File.Exists(weights))
            throw new CliUsageException($"weight file '{weights}' does not exist (give an OpenCLIP checkpoint or an hf-hub: name)");
        return weights;
    }

    /// <summary>L2-normalised image embeddings, one array per image, computed <paramref name="batchSize"/> at a time.</summary>
    public static float[][] EncodeImages(ClipNetwork network, IReadOnlyList<ImageSample> samples, int batchSize)
    {
        int dim = network.Model.Config.EmbedDim;
        var result = new List<float[]>(samples.Count);
        for (int start = 0; start < samples.Count; start += batchSize)
        {
            var batch = samples.Skip(start).Take(batchSize).ToArray();
            var flat = network.EncodeImages(batch, normalize: true);
            for (int i = 0; i < batch.Length; i++) result.Add(flat.AsSpan(i * dim, dim).ToArray());
        }
        return result.ToArray();
    }
}
