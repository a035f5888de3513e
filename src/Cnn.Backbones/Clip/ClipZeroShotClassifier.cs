using Cnn.Backbones.Native;
using static TorchSharp.torch;

namespace Cnn.Backbones.Clip;

/// <summary>
/// A zero-shot classifier built from text, as CLIP's ImageNet evaluation and OpenCLIP's <c>build_zero_shot_classifier</c> do:
/// each label's prompts (every template with <c>{}</c> replaced by the label) are encoded and L2-normalised, averaged, and the
/// mean normalised again; the columns of <see cref="Weights"/> [EmbedDim, labels] are those class embeddings. Logits are
/// exp(logit_scale) · normalised image embedding · <see cref="Weights"/>.
/// </summary>
public sealed class ClipZeroShotClassifier : IDisposable
{
    /// <summary>The template used when none is given: OpenAI's plain prompt.</summary>
    public const string DefaultTemplate = "a photo of a {}.";

    private ClipZeroShotClassifier(IReadOnlyList<string> labels, IReadOnlyList<string> templates, Tensor weights, float logitScale)
    {
        Labels = labels;
        Templates = templates;
        Weights = weights;
        LogitScale = logitScale;
    }

    /// <summary>The class names, in column order.</summary>
    public IReadOnlyList<string> Labels { get; }

    /// <summary>The templates, each with one or more <c>{}</c>.</summary>
    public IReadOnlyList<string> Templates { get; }

    /// <summary>The class embeddings [EmbedDim, labels], float32 on the CPU, each column of unit length.</summary>
    public Tensor Weights { get; }

    /// <summary>exp(logit_scale) of the model the classifier was built with.</summary>
    public float LogitScale { get; }

    /// <summary>Checks labels and templates: at least one of each, no blank or repeated label, every template has <c>{}</c>.</summary>
    /// <param name="labels">Class names.</param>
    /// <param name="templates">Prompt templates.</param>
    /// <exception cref="ArgumentException">What is wrong, and how to fix it.</exception>
    public static void Validate(IReadOnlyList<string> labels, IReadOnlyList<string> templates)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(templates);
        if (labels.Count == 0)
            throw new ArgumentException("The label list is empty: give at least one class name (e.g. \"cat,dog,car\").", nameof(labels));
        for (int i = 0; i < labels.Count; i++)
            if (string.IsNullOrWhiteSpace(labels[i]))
                throw new ArgumentException($"Label {i} is blank: every class needs a name to put into the templates.", nameof(labels));
        var repeated = labels.GroupBy(l => l, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (repeated is not null)
            throw new ArgumentException($"The label '{repeated.Key}' is given {repeated.Count()} times; each class must be named once.", nameof(labels));
        if (templates.Count == 0)
            throw new ArgumentException($"The template list is empty: give at least one template such as \"{DefaultTemplate}\".", nameof(templates));
        foreach (var template in templates)
            if (template is null || !template.Contains("{}", StringComparison.Ordinal))
                throw new ArgumentException($"The template \"{template}\" has no '{{}}' to put the label into; write it like \"{DefaultTemplate}\".", nameof(templates));
    }

    /// <summary>The prompt for one label: the template with every <c>{}</c> replaced by the label.</summary>
    /// <param name="template">A template with <c>{}</c>.</param>
    /// <param name="label">A class name.</param>
    public static string Prompt(string template, string label)
    {
        ArgumentNullException.ThrowIfNull(template);
        return template.Replace("{}", label, StringComparison.Ordinal);
    }

    /// <summary>Builds the classifier from <paramref name="model"/>'s text tower.</summary>
    /// <param name="model">A CLIP model (in eval mode).</param>
    /// <param name="labels">Class names.</param>
    /// <param name="templates">Prompt templates with <c>{}</c>; <see cref="DefaultTemplate"/> when null.</param>
    /// <param name="warn">Receives a warning for each prompt cut to 77 tokens; null to ignore.</param>
    /// <exception cref="ArgumentException">Bad labels or templates (see <see cref="Validate"/>).</exception>
    public static ClipZeroShotClassifier Build(ClipModel model, IReadOnlyList<string> labels, IReadOnlyList<string>? templates = null, Action<string>? warn = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        templates ??= [DefaultTemplate];
        Validate(labels, templates);
        var labelCopy = labels.ToArray();
        var templateCopy = templates.ToArray();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var columns = new List<Tensor>(labelCopy.Length);
        foreach (var label in labelCopy)
        {
            var prompts = templateCopy.Select(t => Prompt(t, label)).ToArray();
            var embeddings = model.EncodeText(prompts, normalize: true, warn).to(CPU);
            var mean = embeddings.mean([0]);
            columns.Add(mean.div(mean.norm()));
        }
        var weights = stack(columns, 1).contiguous().MoveToOuterDisposeScope();
        float scale = model.LogitScale.detach().exp().cpu().item<float>();
        return new ClipZeroShotClassifier(labelCopy, templateCopy, weights, scale);
    }

    /// <summary>A classifier from stored class embeddings (e.g. read back from a model file).</summary>
    /// <param name="labels">Class names, in column order.</param>
    /// <param name="templates">The templates the embeddings were built from.</param>
    /// <param name="weights">[EmbedDim, labels] float32; the classifier owns it.</param>
    /// <param name="logitScale">exp(logit_scale).</param>
    public static ClipZeroShotClassifier FromWeights(IReadOnlyList<string> labels, IReadOnlyList<string> templates, Tensor weights, float logitScale)
    {
        ArgumentNullException.ThrowIfNull(weights);
        Validate(labels, templates);
        if (weights.dim() != 2 || weights.shape[1] != labels.Count)
            throw new ArgumentException($"Weights [{string.Join(", ", weights.shape)}] do not have one column per label ({labels.Count}).", nameof(weights));
        return new ClipZeroShotClassifier(labels.ToArray(), templates.ToArray(), weights, logitScale);
    }

    /// <summary>Logits [N, labels] = exp(logit_scale) · (image / ‖image‖) · <see cref="Weights"/>.</summary>
    /// <param name="imageEmbeddings">Image embeddings [N, EmbedDim] (normalised or not).</param>
    public Tensor Logits(Tensor imageEmbeddings)
    {
        ArgumentNullException.ThrowIfNull(imageEmbeddings);
        using var scope = NewDisposeScope();
        var x = imageEmbeddings.to(CPU).to_type(ScalarType.Float32);
        x = x.div(x.norm(1, keepdim: true));
        return x.matmul(Weights).Times(LogitScale).MoveToOuterDisposeScope();
    }

    /// <summary>Frees <see cref="Weights"/>.</summary>
    public void Dispose() => Weights.Dispose();
}
