using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Training;

/// <summary>Keeps a CPU copy of the best epoch's weights (by the early-stopping metric) and restores them at the end.</summary>
internal sealed class BestEpochTracker(EarlyStoppingMetric metric) : IDisposable
{
    private Dictionary<string, Tensor>? _weights;
    private double _score = double.NegativeInfinity;

    /// <summary>The best epoch so far (0 before any).</summary>
    public int Epoch { get; private set; }

    /// <summary>The best epoch's score (higher is better), −∞ before any.</summary>
    public double Score => _score;

    /// <summary>The best epoch's weights (CPU copies owned by the tracker), or null before any.</summary>
    public IReadOnlyDictionary<string, Tensor>? Weights => _weights;

    /// <summary>Takes over a recorded best epoch (from a checkpoint): its number, score and weights, which the tracker then owns.</summary>
    public void Load(int epoch, double score, Dictionary<string, Tensor>? weights)
    {
        DisposeWeights();
        Epoch = epoch;
        _score = score;
        _weights = weights;
    }

    /// <summary>Records the epoch if it is the best so far; returns true when it improved.</summary>
    /// <exception cref="InvalidOperationException">The metric is accuracy but the validation data has no labelled image.</exception>
    public bool Offer(int epoch, ValidationScore score, nn.Module model)
    {
        double value = metric == EarlyStoppingMetric.ValidationLoss
            ? -score.Loss
            : score.Accuracy ?? throw new InvalidOperationException("EarlyStoppingMetric is ValidationAccuracy but the validation data has no labelled image; use ValidationLoss.");
        if (!(value > _score)) return false;
        _score = value;
        Epoch = epoch;
        DisposeWeights();
        _weights = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().to(CPU).clone());
        return true;
    }

    /// <summary>Copies the best epoch's weights back into <paramref name="model"/> (nothing without a recorded epoch).</summary>
    public void Restore(nn.Module model)
    {
        if (_weights is null) return;
        using (no_grad())
        {
            var current = model.state_dict();
            foreach (var (name, value) in _weights)
                current[name].copy_(value);
        }
        DisposeWeights();
    }

    /// <summary>Releases the copy.</summary>
    public void Dispose() => DisposeWeights();

    private void DisposeWeights()
    {
        if (_weights is null) return;
        foreach (var tensor in _weights.Values) tensor.Dispose();
        _weights = null;
    }
}
