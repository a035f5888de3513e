using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.Backbones.Diagnostics;

/// <summary>One row of a <see cref="ModelSummary"/>: a module that ran during the forward pass.</summary>
/// <param name="Name">Dotted module path (e.g. <c>layer1.0.conv1</c>), as in the state dict.</param>
/// <param name="Type">Module type name (e.g. <c>Conv2d</c>).</param>
/// <param name="OutputShape">Output shape with the batch dimension shown as -1.</param>
/// <param name="Parameters">Parameters owned directly by this module (not its children), as torchsummary counts them.</param>
public sealed record LayerSummary(string Name, string Type, long[] OutputShape, long Parameters);

/// <summary>
/// A per-layer table of a network in torchsummary's layout: each module's output shape and parameters, then totals
/// (total/trainable/non-trainable parameters, input, forward/backward activations and parameter sizes in MB).
/// </summary>
public sealed class ModelSummary
{
    private ModelSummary(IReadOnlyList<LayerSummary> layers, long total, long trainable, long[] inputShape, long activationValues)
    {
        Layers = layers;
        TotalParameters = total;
        TrainableParameters = trainable;
        InputShape = inputShape;
        ActivationValues = activationValues;
    }

    /// <summary>Modules in the order they ran.</summary>
    public IReadOnlyList<LayerSummary> Layers { get; }

    /// <summary>All parameters of the model.</summary>
    public long TotalParameters { get; }

    /// <summary>Parameters with <c>requires_grad</c> set.</summary>
    public long TrainableParameters { get; }

    /// <summary>Parameters without <c>requires_grad</c>.</summary>
    public long NonTrainableParameters => TotalParameters - TrainableParameters;

    /// <summary>Input shape of one sample (C, H, W).</summary>
    public long[] InputShape { get; }

    /// <summary>Sum over all rows of one sample's output values.</summary>
    public long ActivationValues { get; }

    /// <summary>Size of one float32 input sample in MB.</summary>
    public double InputSizeMB => InputShape.Aggregate(1L, (a, b) => a * b) * 4.0 / (1024 * 1024);

    /// <summary>Forward plus backward activation memory of one sample in MB (twice the outputs, float32), as torchsummary reports.</summary>
    public double ForwardBackwardSizeMB => 2.0 * ActivationValues * 4.0 / (1024 * 1024);

    /// <summary>Parameter memory in MB (float32).</summary>
    public double ParamsSizeMB => TotalParameters * 4.0 / (1024 * 1024);

    /// <summary>Input + activations + parameters in MB.</summary>
    public double EstimatedTotalSizeMB => InputSizeMB + ForwardBackwardSizeMB + ParamsSizeMB;

    /// <summary>
    /// Runs one eval-mode forward pass of a batch of two random samples of <paramref name="inputShape"/> (C, H, W) with
    /// hooks on every non-container module and collects the table. The model's training mode is restored afterwards.
    /// </summary>
    public static ModelSummary Create(nn.Module<Tensor, Tensor> model, long[] inputShape)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (inputShape is not { Length: 3 } || inputShape.Any(d => d < 1))
            throw new ArgumentException($"Input shape must be C×H×W with positive sizes, got [{string.Join(", ", inputShape ?? Array.Empty<long>())}].", nameof(inputShape));
        var layers = new List<LayerSummary>();
        var hooks = new List<Action>();
        long activations = 0;
        foreach (var (name, module) in model.named_modules())
        {
            if (string.IsNullOrEmpty(name) || module is TorchSharp.Modules.Sequential or TorchSharp.Modules.ModuleList<nn.Module> || module is not nn.Module<Tensor, Tensor> hookable)
                continue;
            string type = module.GetType().Name;
            long own = module.named_parameters(recurse: false).Sum(p => p.parameter.numel());
            var remover = hookable.register_forward_hook((m, input, output) =>
            {
                var shape = output.shape.ToArray();
                shape[0] = -1;
                layers.Add(new LayerSummary(name, type, shape, own));
                activations += output.numel() / output.shape[0];
                return output;
            });
            hooks.Add(remover.remove);
        }
        bool wasTraining = model.training;
        try
        {
            model.eval();
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var device = model.parameters().FirstOrDefault()?.device ?? CPU;
            model.call(randn(new[] { 2L }.Concat(inputShape).ToArray(), device: device));
        }
        finally
        {
            foreach (var remove in hooks) remove();
            model.train(wasTraining);
        }
        long total = model.parameters().Sum(p => p.numel());
        long trainable = model.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
        return new ModelSummary(layers, total, trainable, inputShape, activations);
    }

    /// <summary>The table as text, torchsummary style, with the module path added.</summary>
    public string ToTable()
    {
        var text = new System.Text.StringBuilder();
        int nameWidth = Math.Max(20, Layers.Count == 0 ? 0 : Layers.Max(l => l.Name.Length) + 2);
        string rule = new('-', nameWidth + 16 + 26 + 16);
        text.AppendLine(rule);
        text.AppendLine($"{"Layer".PadRight(nameWidth)}{"Type",-16}{"Output Shape",26}{"Param #",16}");
        text.AppendLine(new string('=', rule.Length));
        foreach (var layer in Layers)
            text.AppendLine($"{layer.Name.PadRight(nameWidth)}{layer.Type,-16}{"[" + string.Join(", ", layer.OutputShape) + "]",26}{layer.Parameters,16:N0}");
        text.AppendLine(new string('=', rule.Length));
        text.AppendLine($"Total params: {TotalParameters:N0}");
        text.AppendLine($"Trainable params: {TrainableParameters:N0}");
        text.AppendLine($"Non-trainable params: {NonTrainableParameters:N0}");
        text.AppendLine(rule);
        text.AppendLine($"Input size (MB): {InputSizeMB:0.00}");
        text.AppendLine($"Forward/backward pass size (MB): {ForwardBackwardSizeMB:0.00}");
        text.AppendLine($"Params size (MB): {ParamsSizeMB:0.00}");
        text.AppendLine($"Estimated Total Size (MB): {EstimatedTotalSizeMB:0.00}");
        text.AppendLine(rule);
        return text.ToString();
    }
}
