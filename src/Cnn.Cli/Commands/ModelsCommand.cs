using System.Text.Json;
using Cnn.Backbones.Models;

namespace Cnn.Cli.Commands;

/// <summary>
/// <c>cnn models</c>: lists the registered architectures with their parameter counts, default input, published weights and the
/// names timm gives them (which every verb accepts as aliases).
/// </summary>
internal sealed class ModelsCommand : ICliCommand
{
    public string Name => "models";

    public string Summary => "list registered architectures with parameter counts";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        new("--family", "only this family (e.g. resnet)", "<name>"),
        CommonOptions.Json,
    ];

    public int Run(CliArguments arguments, TextWriter stdout, TextWriter stderr)
    {
        string? family = arguments.String("--family");
        bool json = arguments.Flag("--json");
        var models = ModelRegistry.List(family);
        if (models.Count == 0)
            throw new CliUsageException($"no models in family '{family}'; families: {string.Join(", ", ModelRegistry.List().Select(m => m.Family).Distinct())}");
        if (json)
        {
            stdout.WriteLine(JsonSerializer.Serialize(models.Select(m => new
            {
                name = m.Name,
                family = m.Family,
                parameters = m.ParameterCount,
                input_size = new[] { m.DefaultConfig.InputSize.Channels, m.DefaultConfig.InputSize.Height, m.DefaultConfig.InputSize.Width },
                crop_pct = m.DefaultConfig.CropPct,
                interpolation = m.DefaultConfig.Interpolation,
                weights = Definition(m).Weights.Select(w => w.Name).ToArray(),
                default_weights = Definition(m).DefaultWeights,
                timm_names = Definition(m).TimmNames.ToArray(),
            }), new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        int width = Math.Max(12, models.Max(m => m.Name.Length) + 2);
        int familyWidth = Math.Max("family".Length, models.Max(m => m.Family.Length)) + 2;
        stdout.WriteLine($"{"model".PadRight(width)}{"family".PadRight(familyWidth)}{"params",14}  {"input",-10} {"weights",-8} timm names");
        foreach (var m in models)
        {
            var size = m.DefaultConfig.InputSize;
            var definition = Definition(m);
            stdout.WriteLine($"{m.Name.PadRight(width)}{m.Family.PadRight(familyWidth)}{m.ParameterCount,14:N0}  {$"{size.Channels}x{size.Height}x{size.Width}",-10} " +
                             $"{definition.Weights.Count,-8} {string.Join(", ", definition.TimmNames)}".TrimEnd());
        }
        stdout.WriteLine($"{models.Count} models; 'cnn weights list <model>' shows a model's published weights; timm names are accepted wherever a model is named");
        return 0;
    }

    private static ModelDefinition Definition(ModelInfo model) => ModelRegistry.GetDefinition(model.Name);
}
