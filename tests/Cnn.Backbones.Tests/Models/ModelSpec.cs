using System.Globalization;
using Cnn.Backbones.Models;
using static TorchSharp.torch;

namespace Cnn.Backbones.Tests.Models;

/// <summary>
/// A model under test: a registered name, optionally followed by option flags that the reference script understands too:
/// <c>+aux</c> (<c>AuxLogits = true</c>), <c>+noaux</c> (<c>AuxLogits = false</c>), <c>+notransform</c> (<c>TransformInput = false</c>),
/// <c>+blocks-2-2-2-3</c> (<c>BlockCounts = [2, 2, 2, 3]</c>).
/// </summary>
/// <param name="Spec">The spec, e.g. <c>googlenet+aux</c>.</param>
internal sealed record ModelSpec(string Spec)
{
    /// <summary>The registered model name.</summary>
    public string Name => Spec.Split('+')[0];

    /// <summary>The flags after the name.</summary>
    public IReadOnlyList<string> Flags => Spec.Split('+')[1..];

    /// <summary>Whether the spec is the registered model with its default options.</summary>
    public bool IsPlain => Flags.Count == 0;

    /// <summary>The model's registration.</summary>
    public ModelDefinition Definition => ModelRegistry.GetDefinition(Name);

    /// <summary>The model's test quirks.</summary>
    public ModelQuirks Quirks => ModelQuirksTable.For(Name, Definition.Family);

    /// <summary>
    /// The model's default options with the spec's flags and the quirks' image size applied, then <paramref name="change"/>
    /// (e.g. <c>o =&gt; o with { FeaturesOnly = true }</c>).
    /// </summary>
    public ModelOptions Options(Func<ModelOptions, ModelOptions>? change = null)
    {
        var options = Definition.DefaultOptions ?? new ModelOptions();
        foreach (var flag in Flags)
        {
            options = flag switch
            {
                "aux" => options with { AuxLogits = true },
                "noaux" => options with { AuxLogits = false },
                "notransform" => options with { TransformInput = false },
                _ when flag.StartsWith("blocks-", StringComparison.Ordinal) =>
                    options with { BlockCounts = flag["blocks-".Length..].Split('-').Select(n => int.Parse(n, CultureInfo.InvariantCulture)).ToArray() },
                _ => throw new ArgumentException($"Unknown flag '+{flag}' in model spec '{Spec}'."),
            };
        }
        return change is null ? options : change(options);
    }

    /// <summary><see cref="Options"/> for inputs of <see cref="ModelQuirks.TestSize"/> (with the quirks' <c>ImageSize</c>).</summary>
    public ModelOptions TestOptions(Func<ModelOptions, ModelOptions>? change = null)
    {
        var options = Options(change);
        return Quirks.ImageSize is { } size && options.ImageSize is null ? options with { ImageSize = size } : options;
    }

    /// <summary>Builds the model through the registry with <see cref="TestOptions"/>.</summary>
    public Backbone Create(Func<ModelOptions, ModelOptions>? change = null) => ModelRegistry.Create(Name, TestOptions(change));

    /// <summary>Builds the model on the meta device (no storage, no initialisation) with <see cref="Options"/>.</summary>
    public Backbone CreateOnMeta(Func<ModelOptions, ModelOptions>? change = null) => Definition.Build(Options(change), META);

    /// <inheritdoc />
    public override string ToString() => Spec;

    /// <summary>The id of the spec at an input size, e.g. <c>resnet50@224</c>.</summary>
    public string At(int size) => $"{Spec}@{size.ToString(CultureInfo.InvariantCulture)}";
}
