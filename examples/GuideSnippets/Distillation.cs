using Cnn.MLNet;
using Cnn.MLNet.Distillation;
using Cnn.MLNet.Persistence;
using Microsoft.ML;

namespace Cnn.Examples.GuideSnippets;

/// <summary>The snippets of docs/guides/distillation.md.</summary>
internal static class Distillation
{
    /// <summary>Distils a saved teacher into LeNet-5 on labelled and unlabelled rows.</summary>
    public static ITransformer Distil(MLContext mlContext, IDataView data)
    {
        #region distill
        // data: an Image column and a Label column ("" for unlabelled rows), e.g. from ImageDataViews.ToDataView.
        using var teacher = DistillationTeacher.FromModelFile("teacher.zip");   // or FromTransformer(fitted), FromWeights(...)
        var pipeline = teacher.MapLabelsToKeys(mlContext, "Label")              // the teacher's class order; "" -> unlabelled
            .Append(CnnTrainer.Distill(teacher, "lenet5", new CnnDistillationOptions
            {
                Temperature = 4, Alpha = 0.5, Epochs = 5,
                ValidationFraction = 0.2, EarlyStoppingPatience = 2,
            }, mlContext))
            .Append(mlContext.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));
        ITransformer student = pipeline.Fit(data);
        CnnPipelineFile.Save(mlContext, student, data.Schema, "student.zip");  // an ordinary classifier pipeline
        #endregion
        return student;
    }
}
