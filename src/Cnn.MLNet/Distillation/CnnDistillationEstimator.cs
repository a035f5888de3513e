using Cnn.Backbones.Models;
using Cnn.MLNet.Mapping;
using Cnn.MLNet.Networks;
using Cnn.MLNet.Scoring;
using Cnn.MLNet.Training;
using Cnn.MLNet.Training.Checkpoints;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Transforms.Image;

namespace Cnn.MLNet.Distillation;

/// <summary>
/// An ML.NET estimator that trains a student CNN from a teacher (knowledge distillation) on an image column, with or without
/// labels, and returns the student as an ordinary <see cref="CnnClassifierTransformer"/>: it saves, loads, evaluates and
/// predicts like any trained model. The label column is optional; where present it must be a key with the teacher's classes
/// in the teacher's order, key 0 marking unlabelled rows (see <see cref="DistillationTeacher.MapLabelsToKeys"/>). The loss is
/// described on <see cref="CnnDistillationOptions"/>. Create it with <c>CnnTrainer.Distill(...)</c>.
/// </summary>
public sealed class CnnDistillationEstimator : IEstimator<CnnClassifierTransformer>
{
    private readonly IHostEnvironment? _environment;

    internal CnnDistillationEstimator(DistillationTeacher teacher, CnnDistillationOptions options, IHostEnvironment? environment)
    {
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(options);
        ModelRegistry.Get(options.StudentArchitecture); // unknown name: the registry's error with close matches
        options.Validate();
        if (options.NumClasses is { } forced && forced != teacher.NumClasses)
            throw new ArgumentException(
                $"The student must predict the teacher's classes: the teacher ({teacher.Description}) has {teacher.NumClasses} classes but " +
                $"CnnDistillationOptions.NumClasses is {forced}. Leave NumClasses unset (the student gets the teacher's {teacher.NumClasses}) " +
                $"or use a teacher trained on {forced} classes.", nameof(options));
        options.StudentSpec(teacher); // the student's model and preprocessing options, checked against the teacher's channels
        Teacher = teacher;
        Options = options;
        _environment = environment;
    }

    /// <summary>The teacher.</summary>
    public DistillationTeacher Teacher { get; }

    /// <summary>The distillation options.</summary>
    public CnnDistillationOptions Options { get; }

    /// <summary>Checks the input columns and describes the output: the input columns plus Score and PredictedLabel.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The image column is missing or holds no images, or the label column is not a key of the teacher's class count.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var o = Options;
        SchemaShapes.RequireImageColumn(inputSchema, o.ImageColumnName);
        bool hasKeyValues = SchemaShapes.Find(inputSchema, o.LabelColumnName) is { } label && SchemaShapes.RequireKeyLabel(label,
            "distillation needs a scalar key in the teacher's class order, or no label column at all",
            $"Map the labels with teacher.MapLabelsToKeys(mlContext, \"{o.LabelColumnName}\").");

        return SchemaShapes.AppendClassifierOutputs(inputSchema, o.ScoreColumnName, o.PredictedLabelColumnName,
            hasKeyValues || Teacher.Labels?.ValueType == "Text");
    }

    /// <summary>Reads the images (and labels where present), distills the teacher into a new student and returns it.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or has the wrong type, or the labels do not match the teacher's classes.</exception>
    /// <exception cref="InvalidOperationException">The data has no rows.</exception>
    /// <exception cref="OperationCanceledException">The options' cancellation token or the MLContext (<c>CancelExecution</c>) cancelled distillation.</exception>
    /// <exception cref="TrainingDivergedException">The loss became NaN or infinite.</exception>
    public CnnClassifierTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        GetOutputSchema(SchemaShapes.FromSchema(input.Schema));
        var o = Options;
        using var cancellation = FitCancellation.Start(_environment, "CnnDistillation", o.CancellationToken);
        var token = cancellation.Token;
        var labelColumn = input.Schema.GetColumnOrNull(o.LabelColumnName);
        var keys = labelColumn is { } column ? CheckLabels(column) : null;
        using var channel = (_environment as IChannelProvider)?.Start("CnnDistillation");

        var data = Read(input, labelColumn is null ? null : o.LabelColumnName, "distillation", token);
        var (train, validation) = SplitValidation(data, keys, token);
        if (validation.Count > 0 && o.EarlyStoppingMetric == EarlyStoppingMetric.ValidationAccuracy && validation.LabelledCount == 0)
            throw new ArgumentOutOfRangeException(nameof(o.EarlyStoppingMetric),
                "CnnDistillationOptions.EarlyStoppingMetric is ValidationAccuracy but no validation image has a label; use ValidationLoss (the distillation loss) or give labelled validation data.");
        int labelled = train.LabelledCount;
        channel?.Info(MessageSensitivity.None,
            $"Distilling {Teacher.Description} into {o.StudentArchitecture} on {train.Count} images ({labelled} labelled, {train.Count - labelled} unlabelled" +
            $"{(o.PseudoLabels && labelled < train.Count ? " with teacher pseudo-labels" : "")}), validating on {validation.Count}; T = {o.Temperature}, alpha = {o.Alpha}, {o.Epochs} epochs of batch {o.BatchSize}.");

        var student = NetworkBuilder.Build(o.StudentSpec(Teacher), NetworkBuilder.ResolveDevice(o.Device), o.Seed);
        student.Log = _environment as IChannelProvider;
        var teacherModel = Teacher.Network.Model;
        bool teacherWasTraining = teacherModel.training;
        try
        {
            teacherModel.eval();
            student.UseCompute(o.Precision, o.MemoryFormat, o.InferenceEngine);
            student.ResolveCompute(o.InferencePrecision, o.InferenceMemoryFormat, o.InferenceEngine); // fails now, not after training
            using var teacherCompute = Teacher.Network.OverrideCompute(o.Precision, o.MemoryFormat);
            channel?.Info(MessageSensitivity.None, $"Computing in {student.ComputeDescription}.");
            var fingerprint = RunFingerprint.Of(o, [
                ("student", NetworkFile.Serialize(student.Spec)), ("teacher", NetworkFile.Serialize(Teacher.Network.Spec)),
                ("teacher weights", RunFingerprint.Weights(Teacher.Network.Model)),
                ("training images", RunFingerprint.Images(train.Samples, train.Labels)),
                ("validation images", RunFingerprint.Images(validation.Samples, validation.Labels))]);
            new TrainingLoop(o, channel, cancellation, fingerprint).Run(student, DistillationObjective.Setup(o, student, Teacher.Network, train, validation, channel, keepDecoded: token));
            // The distilled model predicts in the inference arithmetic, as it will after a save and load, whatever it trained in.
            student.UseCompute(o.InferencePrecision, o.InferenceMemoryFormat, o.InferenceEngine);
        }
        catch
        {
            student.Dispose();
            throw;
        }
        finally
        {
            teacherModel.train(teacherWasTraining);
        }
        var outputKeys = keys ?? Teacher.Labels ?? LabelKeys.FromNames(Teacher.NumClasses, null);
        return new CnnClassifierTransformer(student, outputKeys, o.ImageColumnName, o.ScoreColumnName, o.PredictedLabelColumnName, o.BatchSize);
    }

    /// <summary>The images and labels of <paramref name="data"/>; an error when it has no rows.</summary>
    private DistillationData Read(IDataView data, string? labelColumn, string what, CancellationToken token)
    {
        var rows = TrainingData.Read(data, Options.ImageColumnName, labelColumn, allowMissingLabels: true, token);
        if (rows.Count == 0)
            throw new InvalidOperationException($"The {what} data has no rows: there is nothing to train on. Check the data loading (file paths, filters).");
        return new DistillationData(rows.Select(r => r.Sample).ToList(), rows.Select(r => r.Label).ToList());
    }

    /// <summary>The training and validation parts: <see cref="CnnFitOptions.ValidationSet"/>, a split of the data, or no validation.</summary>
    private (DistillationData Train, DistillationData Validation) SplitValidation(DistillationData data, LabelKeys? keys, CancellationToken token)
    {
        var o = Options;
        if (o.ValidationSet is { } set)
        {
            GetOutputSchema(SchemaShapes.FromSchema(set.Schema));
            var column = set.Schema.GetColumnOrNull(o.LabelColumnName);
            if (column is { } c)
            {
                var validationKeys = CheckLabels(c);
                if (keys?.Values is { } names && validationKeys.Values is { } other && !names.SequenceEqual(other, StringComparer.Ordinal))
                    throw new ArgumentOutOfRangeException(nameof(o.ValidationSet),
                        $"The validation set's '{o.LabelColumnName}' column has other classes than the training data's: map both with teacher.MapLabelsToKeys(mlContext, \"{o.LabelColumnName}\").");
            }
            return (data, Read(set, column is null ? null : o.LabelColumnName, "validation", token));
        }
        return o.ValidationFraction > 0 ? data.Split(o.ValidationFraction, o.Seed) : (data, DistillationData.Empty);
    }

    /// <summary>The data's label keys, checked against the teacher's classes: the same count and, when both are named, the same names in the same order.</summary>
    private LabelKeys CheckLabels(DataViewSchema.Column column)
    {
        var keys = LabelKeys.FromColumn(column);
        if (keys.Count != Teacher.NumClasses)
            throw new ArgumentOutOfRangeException(nameof(Options.LabelColumnName),
                $"Label column '{column.Name}' has {keys.Count} classes but the teacher ({Teacher.Description}) predicts {Teacher.NumClasses}. " +
                $"Map the labels with the teacher's classes: teacher.MapLabelsToKeys(mlContext, \"{column.Name}\") (unknown or empty labels become unlabelled rows).");
        if (keys.Values is { } names && Teacher.Labels?.Values is { } teacherNames && !names.SequenceEqual(teacherNames, StringComparer.Ordinal))
        {
            int first = Enumerable.Range(0, names.Length).First(i => names[i] != teacherNames[i]);
            throw new ArgumentOutOfRangeException(nameof(Options.LabelColumnName),
                $"Label column '{column.Name}' does not list the teacher's classes in the teacher's order (key {first + 1} is '{names[first]}' but the teacher's class {first} is '{teacherNames[first]}'). " +
                $"Map the labels with teacher.MapLabelsToKeys(mlContext, \"{column.Name}\").");
        }
        return keys;
    }
}
