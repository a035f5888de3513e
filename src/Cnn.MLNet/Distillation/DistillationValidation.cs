using Cnn.Backbones.Models;
using Cnn.MLNet.Data;
using Cnn.MLNet.Networks;
using Cnn.MLNet.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Cnn.MLNet.Distillation;

/// <summary>
/// Distillation's validation: the student's distillation loss (no mixing) against the teacher's logits on the validation images,
/// computed once and cached; the student's accuracy on the labelled images and its agreement with the teacher.
/// </summary>
internal sealed class DistillationValidation : IValidation
{
    private readonly CnnDistillationOptions _options;
    private readonly TeacherOutputs _teacher;
    private readonly DistillationData _validation;
    private readonly ImageBatcher _batcher;
    private readonly Device _device;
    private float[]? _teacherLogits;

    /// <param name="options">The run's options (temperature, α, pseudo-labels).</param>
    /// <param name="student">The student being trained.</param>
    /// <param name="teacher">The teacher's outputs.</param>
    /// <param name="validation">Validation images with their labels.</param>
    public DistillationValidation(CnnDistillationOptions options, CnnNetwork student, TeacherOutputs teacher, DistillationData validation)
    {
        _options = options;
        _teacher = teacher;
        _validation = validation;
        _batcher = OptimizationSetup.EvaluationBatcher(options, student.Preprocess);
        _device = student.Device;
    }

    /// <summary>What keeping images decoded covers: the validation images, through the student's evaluation batcher.</summary>
    public (ImageBatcher? Batcher, IReadOnlyList<ImageSample> Samples, string What) DecodedSet => (_batcher, _validation.Samples, "validation");

    /// <inheritdoc/>
    public ValidationScore? Validate(Backbone model, CancellationToken token)
    {
        if (_validation.Count == 0) return null;
        _teacherLogits ??= _teacher.Logits(_validation.Samples, "validation", token);
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var _ = no_grad();
            var o = _options;
            var counts = new DistillationCounts();
            double lossSum = 0;
            foreach (var batch in _batcher.EnumerateEpoch(_validation.Samples, 0, token))
            {
                if (batch.Count == 0) continue;
                using var scope = NewDisposeScope();
                var indices = batch.SampleIndices.ToArray();
                var teacherLogits = _teacher.Gather(_teacherLogits, indices).to(_device);
                var labels = indices.Select(i => (long)_validation.Labels[i]).ToArray();
                var logits = model.call(batch.ToTensor().to(_device));
                var terms = DistillationLoss.Compute(logits, teacherLogits, torch.tensor(labels, ScalarType.Int64).to(_device), o.Temperature, o.Alpha, o.PseudoLabels);
                lossSum += terms.Total.item<float>() * batch.Count;
                counts.Add(logits.argmax(1), teacherLogits.argmax(1), labels);
            }
            if (counts.Images == 0) return null;
            return new ValidationScore(lossSum / counts.Images, counts.StudentAccuracy, (double)counts.Agreed / counts.Images);
        }
        finally
        {
            model.train(wasTraining);
        }
    }
}
