using Cnn.Backbones.Models;
using Cnn.MLNet.Distillation;
using Cnn.MLNet.Mapping;
using Cnn.MLNet.Scoring;
using Microsoft.ML;

namespace Cnn.MLNet;

public static partial class CnnTrainer
{
    /// <summary>
    /// Knowledge distillation: trains a student of architecture <paramref name="studentArchitecture"/> (any registered name, from
    /// scratch or from the weights of <see cref="CnnDistillationOptions.Student"/>) to imitate <paramref name="teacher"/>, on data with
    /// an image column and an optional label column (key 0 = unlabelled). The result is an ordinary <see cref="CnnClassifierTransformer"/>.
    /// </summary>
    /// <example><code>
    /// using var teacher = DistillationTeacher.FromModelFile("teacher.zip");
    /// var pipeline = teacher.MapLabelsToKeys(mlContext, "Label")
    ///     .Append(CnnTrainer.Distill(teacher, "lenet5", new CnnDistillationOptions { Temperature = 4, Alpha = 0.5 }, mlContext));
    /// </code></example>
    /// <exception cref="ArgumentException">Unknown student architecture, or <see cref="CnnDistillationOptions.NumClasses"/> other than the teacher's.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public static CnnDistillationEstimator Distill(DistillationTeacher teacher, string studentArchitecture, CnnDistillationOptions? options = null, MLContext? mlContext = null)
    {
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentException.ThrowIfNullOrWhiteSpace(studentArchitecture);
        ModelRegistry.Get(studentArchitecture);
        options ??= new CnnDistillationOptions();
        options.StudentArchitecture = studentArchitecture;
        return new CnnDistillationEstimator(teacher, options, mlContext);
    }

    /// <summary>Knowledge distillation from a fitted classifier (e.g. the last stage of a fitted <see cref="CnnTrainer"/> pipeline); see
    /// <see cref="Distill(DistillationTeacher, string, CnnDistillationOptions?, MLContext?)"/>.</summary>
    public static CnnDistillationEstimator Distill(CnnClassifierTransformer teacher, string studentArchitecture, CnnDistillationOptions? options = null, MLContext? mlContext = null)
    {
        ArgumentNullException.ThrowIfNull(teacher);
        return Distill(DistillationTeacher.FromTransformer(teacher), studentArchitecture, options, mlContext);
    }
}
