using Cnn.MLNet.Data;
using Cnn.MLNet.Training;
using static TorchSharp.torch;

namespace Cnn.MLNet.Distillation;

/// <summary>
/// One distillation step's data: the student's batch and the teacher's side of the same images, either its own view of them
/// (its size, channels and normalisation; the same crop and flip) or its logits cached once up front.
/// </summary>
/// <param name="Student">The student's prepared images.</param>
/// <param name="TeacherView">The teacher's prepared view of the same images, or null when its logits are cached.</param>
/// <param name="CachedTeacherLogits">The teacher's cached logits on the images [n, classes] (CPU), or null when it runs on its view.</param>
internal sealed record DistillationBatch(ImageBatch Student, ImageBatch? TeacherView, Tensor? CachedTeacherLogits) : ITrainingBatch
{
    /// <inheritdoc/>
    public int Count => Student.Count;
}
