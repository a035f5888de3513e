using Cnn.Backbones.Models;
using Cnn.MLNet.Mapping;
using Cnn.MLNet.Scoring;
using Cnn.MLNet.Training;
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
        if (SchemaShapes.Find(inputSchema, o.ImageColumnName) is not { } image)
            throw new ArgumentOutOfRangeException(nameof(inputSchema),
                $"Input column '{o.ImageColumnName}' is missing. Load images first, e.g. mlContext.Transforms.LoadRawImageBytes(\"{o.ImageColumnName}\", imageFolder, \"ImagePath\"), or set ImageColumnName.");
        bool isImage = image.Kind == SchemaShape.Column.VectorKind.Scalar && image.ItemType is ImageDataViewType
            || image.Kind != SchemaShape.Column.VectorKind.Scalar && image.ItemType == NumberDataViewType.Byte
            || image.Kind == SchemaShape.Column.VectorKind.Scalar && image.ItemType is TextDataViewType;
        if (!isImage)
            throw new ArgumentOutOfRangeException(nameof(inputSchema),
                $"Column '{o.ImageColumnName}' ({image.Kind} of {image.ItemType}) is not an image: expected LoadImages output, LoadRawImageBytes output or a text column of file paths.");
        bool hasKeyValues = false;
        if (SchemaShapes.Find(inputSchema, o.LabelColumnName) is { } label)
        {
            if (!label.IsKey || label.Kind != SchemaShape.Column.VectorKind.Scalar || label.ItemType != NumberDataViewType.UInt32)
                throw new ArgumentOutOfRangeException(nameof(inputSchema),
                    $"Label column '{o.LabelColumnName}' is {label.Kind} of {label.ItemType}{(label.IsKey ? " key" : "")}; distillation needs a scalar key in the teacher's class order " +
                    $"(teacher.MapLabelsToKeys(mlContext, \"{o.LabelColumnName}\")), or no label column at all.");
            hasKeyValues = SchemaShapes.Find(label.Annotations, "KeyValues") is { ItemType: TextDataViewType };
        }

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

        var rows = TrainingData.Read(input, o.ImageColumnName, labelColumn is null ? null : o.LabelColumnName, allowMissingLabels: true, token);
        if (rows.Count == 0)
            throw new InvalidOperationException("The distillation data has no rows: there is nothing to train on. Check the data loading (file paths, filters).");
        var samples = rows.Select(r => r.Sample).ToList();
        var labels = rows.Select(r => r.Label).ToList();
        int labelled = labels.Count(l => l >= 0);
        channel?.Info(MessageSensitivity.None,
            $"Distilling {Teacher.Description} into {o.StudentArchitecture} on {rows.Count} images ({labelled} labelled, {rows.Count - labelled} unlabelled" +
            $"{(o.PseudoLabels && labelled < rows.Count ? " with teacher pseudo-labels" : "")}); T = {o.Temperature}, alpha = {o.Alpha}, {o.Epochs} epochs of batch {o.BatchSize}.");
        var network = new DistillationLoop(o, channel, cancellation).Train(Teacher, samples, labels);
        var outputKeys = keys ?? Teacher.Labels ?? LabelKeys.FromNames(Teacher.NumClasses, null);
        return new CnnClassifierTransformer(network, outputKeys, o.ImageColumnName, o.ScoreColumnName, o.PredictedLabelColumnName, o.BatchSize);
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
