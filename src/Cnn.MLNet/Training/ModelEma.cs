using Cnn.Backbones.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Training;

/// <summary>
/// timm's <c>ModelEmaV2</c>: an exponential moving average of every state-dict entry of a model (parameters and buffers),
/// <c>ema = decay · ema + (1 − decay) · value</c> after each optimizer step; integer buffers (BatchNorm's batch counter) are
/// copied. The average is kept beside the model and swapped in to validate or to keep.
/// </summary>
internal sealed class ModelEma : IDisposable
{
    private readonly Dictionary<string, Tensor> _average;

    /// <summary>Starts the average at <paramref name="model"/>'s current weights.</summary>
    public ModelEma(nn.Module model, double decay)
    {
        Decay = decay;
        _average = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
    }

    /// <summary>The weight of the old average at each update.</summary>
    public double Decay { get; }

    /// <summary>The averaged value of <paramref name="name"/> (a state-dict key).</summary>
    public Tensor this[string name] => _average[name];

    /// <summary>Moves the average one step towards <paramref name="model"/>'s weights.</summary>
    public void Update(nn.Module model)
    {
        using var noGrad = no_grad();
        foreach (var (name, value) in model.state_dict())
        {
            var average = _average[name];
            using var scope = NewDisposeScope();
            if (average.is_floating_point()) average.copy_(average.Times(Decay).Plus(value.Times(1 - Decay)));
            else average.copy_(value);
        }
    }

    /// <summary>Swaps the average into <paramref name="model"/> until the returned scope is disposed, which puts the trained weights back.</summary>
    public IDisposable SwapInto(nn.Module model)
    {
        var saved = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        CopyInto(model);
        return new Restore(model, saved);
    }

    /// <summary>Copies the average into <paramref name="model"/> for good.</summary>
    public void CopyInto(nn.Module model) => Copy(_average, model);

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var tensor in _average.Values) tensor.Dispose();
        _average.Clear();
    }

    private static void Copy(Dictionary<string, Tensor> source, nn.Module model)
    {
        using var noGrad = no_grad();
        foreach (var (name, value) in model.state_dict()) value.copy_(source[name]);
    }

    private sealed class Restore(nn.Module model, Dictionary<string, Tensor> saved) : IDisposable
    {
        public void Dispose()
        {
            Copy(saved, model);
            foreach (var tensor in saved.Values) tensor.Dispose();
            saved.Clear();
        }
    }
}
