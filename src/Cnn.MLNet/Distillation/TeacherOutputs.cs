using System.Diagnostics;
using Cnn.MLNet.Data;
using Cnn.MLNet.Networks;
using Cnn.MLNet.Training;
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Distillation;

/// <summary>The teacher's logits: on a prepared input, or once over a set of images and cached per image.</summary>
internal sealed class TeacherOutputs
{
    private readonly CnnNetwork _teacher;
    private readonly CnnFitOptions _options;
    private readonly int _classes;
    private readonly IChannel? _channel;

    /// <param name="teacher">The teacher (kept in eval mode by the caller).</param>
    /// <param name="options">The run's options (batch size and corrupt-image policy of the cached pass).</param>
    /// <param name="classes">Classes of the logits.</param>
    /// <param name="channel">Where a cached pass is logged, or null.</param>
    public TeacherOutputs(CnnNetwork teacher, CnnFitOptions options, int classes, IChannel? channel)
    {
        _teacher = teacher;
        _options = options;
        _classes = classes;
        _channel = channel;
    }

    /// <summary>The teacher's preprocessing.</summary>
    public Imaging.PreprocessOptions Preprocess => _teacher.Preprocess;

    /// <summary>The teacher's device.</summary>
    public Device Device => _teacher.Device;

    /// <summary>One eval-mode, no-grad teacher pass over <paramref name="samples"/>: logits [N · classes], row i for sample i (NaN for skipped images).</summary>
    public float[] Logits(IReadOnlyList<ImageSample> samples, string what, CancellationToken token)
    {
        var clock = Stopwatch.StartNew();
        var logits = new float[(long)samples.Count * _classes];
        Array.Fill(logits, float.NaN);
        var batcher = OptimizationSetup.EvaluationBatcher(_options, _teacher.Preprocess);
        foreach (var batch in batcher.EnumerateEpoch(samples, 0, token))
        {
            if (batch.Count == 0) continue;
            using var scope = NewDisposeScope();
            var values = Forward(batch.ToTensor()).contiguous().data<float>().ToArray();
            var indices = batch.SampleIndices;
            for (int k = 0; k < batch.Count; k++)
                values.AsSpan(k * _classes, _classes).CopyTo(logits.AsSpan(indices[k] * _classes, _classes));
        }
        _channel?.Info(MessageSensitivity.None, $"Teacher logits of {samples.Count} {what} images computed once and cached ({clock.Elapsed.TotalSeconds:0.0}s).");
        return logits;
    }

    /// <summary>Teacher logits of a prepared input, on the CPU, in eval mode without gradient.</summary>
    public Tensor Forward(Tensor input)
    {
        using var _ = no_grad();
        return _teacher.Model.call(input.to(_teacher.Device)).to(CPU);
    }

    /// <summary>The rows <paramref name="indices"/> of logits cached by <see cref="Logits"/>: [n, classes] on the CPU.</summary>
    public Tensor Gather(float[] cached, int[] indices)
    {
        var rows = new float[indices.Length * _classes];
        for (int k = 0; k < indices.Length; k++)
            cached.AsSpan(indices[k] * _classes, _classes).CopyTo(rows.AsSpan(k * _classes, _classes));
        return torch.tensor(rows, new long[] { indices.Length, _classes });
    }
}
