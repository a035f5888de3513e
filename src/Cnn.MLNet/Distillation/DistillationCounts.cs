using static TorchSharp.torch;

namespace Cnn.MLNet.Distillation;

/// <summary>Distillation tallies over an epoch or a validation pass: loss parts, agreement with the teacher, accuracies on the labelled images.</summary>
internal sealed class DistillationCounts
{
    /// <summary>Sum of the soft (teacher) loss times the images.</summary>
    public double Soft;

    /// <summary>Sum of the hard (label) loss times the labelled images.</summary>
    public double Hard;

    /// <summary>Images the hard loss was taken on.</summary>
    public long HardImages;

    /// <summary>Images counted.</summary>
    public long Images;

    /// <summary>Labelled images counted.</summary>
    public long Labelled;

    /// <summary>Images where the student predicts the teacher's class.</summary>
    public long Agreed;

    /// <summary>Labelled images the student predicts right.</summary>
    public long StudentCorrect;

    /// <summary>Labelled images the teacher predicts right.</summary>
    public long TeacherCorrect;

    /// <summary>The student's accuracy on the labelled images, or null when none is labelled.</summary>
    public double? StudentAccuracy => Labelled > 0 ? (double)StudentCorrect / Labelled : null;

    /// <summary>The teacher's accuracy on the labelled images, or null when none is labelled.</summary>
    public double? TeacherAccuracy => Labelled > 0 ? (double)TeacherCorrect / Labelled : null;

    /// <summary>Counts a batch's predictions against each other and the labels (−1 = unlabelled).</summary>
    public void Add(Tensor studentPredicted, Tensor teacherPredicted, long[] labels)
    {
        var student = studentPredicted.cpu().data<long>().ToArray();
        var teacher = teacherPredicted.cpu().data<long>().ToArray();
        for (int k = 0; k < labels.Length; k++)
        {
            Images++;
            if (student[k] == teacher[k]) Agreed++;
            if (labels[k] < 0) continue;
            Labelled++;
            if (student[k] == labels[k]) StudentCorrect++;
            if (teacher[k] == labels[k]) TeacherCorrect++;
        }
    }
}
