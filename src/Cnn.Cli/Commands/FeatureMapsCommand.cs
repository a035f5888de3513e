using Cnn.Backbones.Models;
using Cnn.Cli.Inference;
using Cnn.MLNet.Explain;
using Cnn.MLNet.Networks;
using static TorchSharp.torch;

namespace Cnn.Cli.Commands;

/// <summary><c>cnn feature-maps</c>: the channels of one feature stage of a network, for one image, as a grid of grey tiles.</summary>
internal sealed class FeatureMapsCommand : ICliCommand
{
    public string Name => "feature-maps";

    public string Summary => "the channels of one feature stage for an image, as a grid of grey tiles (PNG)";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        CommonOptions.Model("registered architecture (or --model-file)"),
        CommonOptions.ModelFile("a model saved by 'cnn train' or 'cnn distill' (or --model)"),
        CommonOptions.Weights("with --model: weights to load: " + CommonOptions.WeightsForms + "; without, the weights are random"),
        CommonOptions.Pretrained,
        new("--stage", "the feature stage (default: the last; 'cnn summary' shows them)", "k"),
        new("--channels", "at most this many channels, the first ones (default 64)", "N"),
        CommonOptions.Output("the PNG to write (default feature-maps.png)"),
    ];

    public string? Positionals => "<image>";

    public int Run(CliArguments arguments, TextWriter stdout, TextWriter stderr)
    {
        string? model = arguments.String("--model");
        string? modelFile = arguments.String("--model-file");
        string? weights = CommonOptions.WeightsOf(arguments);
        int? stage = arguments.OptionalInt("--stage", min: 0);
        int channels = arguments.Int("--channels", 64, min: 1, max: 4096);
        string output = OutputPath.Check(arguments.String("--output") ?? "feature-maps.png", "--output");
        if ((model is null) == (modelFile is null))
            throw new CliUsageException("give either --model <name> or --model-file <model.zip>");
        if (modelFile is not null && weights is not null)
            throw new CliUsageException("--weights applies to --model only (a model file carries its own)");
        string? name = model is null ? null : CliApp.RequireModel(model);
        var files = ImageFiles.FromPositionals(arguments);
        if (files.Count != 1) throw new CliUsageException("give exactly one image");
        var sample = ImageFiles.ToSamples(files, ImageFiles.ReadAll(files))[0];

        StageActivation activation;
        if (modelFile is not null)
        {
            using var pipeline = PipelineModel.Load(modelFile);
            activation = Capture(pipeline.Classifier.Network, sample, stage);
        }
        else
        {
            if (weights is null) BackboneRunner.WarnRandomWeights(stderr, name!);
            using var runner = BackboneRunner.Create(name!, weights, numClasses: null, cropPct: null);
            activation = Capture(runner.Network, sample, stage);
        }
        var grid = FeatureMapGrid.Render(activation, new FeatureMapGridOptions { MaxChannels = channels });
        grid.SavePng(output);
        stdout.WriteLine($"{files[0]}: stage {activation.Stage} ({activation.StageName}), {activation.Channels} channels of {activation.Height}x{activation.Width}; " +
                         $"{Math.Min(channels, activation.Channels)} drawn, each scaled to its own min..max");
        stdout.WriteLine($"saved: {Path.GetFullPath(output)} ({grid.Width}x{grid.Height})");
        return 0;
    }

    private static StageActivation Capture(CnnNetwork network, Cnn.MLNet.Data.ImageSample sample, int? stage)
    {
        using var scope = NewDisposeScope();
        var input = PreparedImage.From(sample, network.Preprocess).ToTensor(network.Device);
        return FeatureMaps.Capture(network.Model, input, stage);
    }
}
