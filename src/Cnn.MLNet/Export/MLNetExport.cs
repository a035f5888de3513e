using System.Globalization;
using Cnn.Backbones.Onnx.Export;
using Cnn.MLNet.Imaging;
using Cnn.MLNet.Mapping;
using Cnn.MLNet.Persistence;
using Cnn.MLNet.Scoring;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Cnn.MLNet.Export;

/// <summary>
/// Converts a fitted pipeline with a CNN classifier into a pipeline of ML.NET's own transformers only, which
/// <c>mlContext.Model.Save</c> writes and any process with Microsoft.ML, Microsoft.ML.ImageAnalytics and
/// Microsoft.ML.OnnxTransformer (+ Microsoft.ML.OnnxRuntime) loads with <c>mlContext.Model.Load</c> — no TorchSharp.
/// </summary>
/// <remarks>
/// <para>The classifier stage becomes <c>[LoadImages →] ResizeImages(IsoCrop, centre) → ExtractPixels(RGB, 0–255) →
/// ApplyOnnxModel → Hash(combine) → ConvertType → MapValue(→ key) → DropColumns</c> (the hash only turns ONNX's one-element
/// class-index vector into a scalar: ML.NET's OnnxTransformer cannot output scalars); the ML.NET stages before and after it (e.g. <c>cnn train</c>'s
/// <c>MapValueToKey(Label)</c> and <c>MapKeyToValue(PredictedClass)</c>) are kept as they are. The ONNX graph is the network's
/// verified export (<see cref="ClassifierOnnxExport"/>) with the centre crop, PIL's grey conversion (for a grey network), the
/// normalisation and the softmax inside it. The output columns are the classifier's: <c>Score</c> (probabilities, the class
/// names as slot names) and <c>PredictedLabel</c> (a key whose key values are the class names, so
/// <c>MulticlassClassification.Evaluate</c> and <c>MapKeyToValue</c> work on it). Before it is returned, the converted stage runs on
/// a seeded random image and must give the network's probabilities (within <see cref="MLNetExportOptions.Tolerance"/>).</para>
/// <para>Preprocessing: images already at the network's input size (with <c>CropPct</c> = 1) reach the network exactly as with
/// this library. Images that need resizing do not: ML.NET's <c>ResizeImages</c> resamples with Skia's Mitchell cubic filter,
/// not Pillow's bilinear/bicubic, so probabilities differ slightly (see the README for the measured agreement). ML.NET cannot
/// feed images of varying size to an ONNX graph (<c>ExtractPixels</c> needs a known size), so the resize cannot move into the
/// graph.</para>
/// </remarks>
public static class MLNetExport
{
    private const string LoadedImageColumn = "__cnn_image";
    private const string ResizedImageColumn = "__cnn_resized";
    private const string HashColumn = "__cnn_class_hash";
    private const string HashValueColumn = "__cnn_class_hash_value";

    /// <summary>Converts a fitted classifier alone (its input: the image column, as <see cref="MLNetExportOptions.ImageInput"/> says).</summary>
    /// <param name="classifier">The fitted classifier.</param>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="options">Export options; null for the defaults.</param>
    /// <exception cref="NotSupportedException">The network cannot be exported to ONNX or its preprocessing cannot be expressed in ML.NET.</exception>
    public static MLNetPipeline ToOnnxPipeline(CnnClassifierTransformer classifier, MLContext mlContext, MLNetExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(classifier);
        options ??= new MLNetExportOptions();
        var builder = new DataViewSchema.Builder();
        builder.AddColumn(classifier.ImageColumnName, ImageType(options));
        return ToOnnxPipeline(mlContext, classifier, builder.ToSchema(), options);
    }

    /// <summary>
    /// Converts a fitted pipeline (as <c>Fit</c> returns it, or as <see cref="CnnPipelineFile.Load"/> reads it) with one CNN
    /// classifier stage; <paramref name="inputSchema"/> is the schema it was fitted on.
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="model">The fitted pipeline.</param>
    /// <param name="inputSchema">Its input schema (<c>data.Schema</c>, or what <see cref="CnnPipelineFile.Load"/> gives).</param>
    /// <param name="options">Export options; null for the defaults.</param>
    /// <returns>The ML.NET pipeline and the input schema to save it with; the image column of that schema is an image
    /// (<see cref="MLImage"/>) or a path, as <see cref="MLNetExportOptions.ImageInput"/> says.</returns>
    /// <exception cref="ArgumentException">The pipeline has no CNN classifier stage.</exception>
    /// <exception cref="NotSupportedException">It has more than one CNN stage, a feature stage, an image column made by an earlier
    /// stage from encoded bytes, or a network or preprocessing that cannot be expressed in ML.NET.</exception>
    public static MLNetPipeline ToOnnxPipeline(MLContext mlContext, ITransformer model, DataViewSchema inputSchema, MLNetExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(inputSchema);
        options ??= new MLNetExportOptions();
        options.Validate();
        var stages = CnnPipelineFile.Stages(model).ToList();
        if (stages.OfType<Features.CnnFeatureTransformer>().Any())
            throw new NotSupportedException("The pipeline has a CNN feature stage; only classifier pipelines convert to plain ML.NET (export the features network with 'cnn export' instead).");
        var classifiers = stages.OfType<CnnClassifierTransformer>().ToList();
        if (classifiers.Count == 0)
            throw new ArgumentException("The pipeline has no CNN classifier stage to convert.", nameof(model));
        if (classifiers.Count > 1)
            throw new NotSupportedException($"The pipeline has {classifiers.Count} CNN classifier stages; the conversion handles one.");
        var classifier = classifiers[0];
        int at = stages.IndexOf(classifier);
        string imageColumn = classifier.ImageColumnName;

        var plainInput = RewriteInput(inputSchema, imageColumn, options);
        var schema = plainInput;
        foreach (var stage in stages.Take(at)) schema = stage.GetOutputSchema(schema);
        var column = schema.GetColumnOrNull(imageColumn)
            ?? throw new ArgumentException($"The classifier's image column '{imageColumn}' is not in the data it is given.", nameof(inputSchema));
        var kind = ImageColumns.KindOf(column);
        if (kind == ImageColumnKind.EncodedBytes)
            throw new NotSupportedException($"The image column '{imageColumn}' holds encoded bytes made by an earlier stage; ML.NET's LoadImages reads paths " +
                                            "and ApplyOnnxModel needs decoded images: load the images with LoadImages (or from paths) in the pipeline instead.");

        var (replacement, onnx, preprocessing, resized) = ClassifierStages(mlContext, classifier, kind, schema, options);
        var all = stages.Take(at).Append(replacement).Concat(stages.Skip(at + 1)).ToArray();
        var chain = new TransformerChain<ITransformer>(all);
        chain.GetOutputSchema(plainInput); // every stage accepts what the one before it gives
        return new MLNetPipeline(chain, plainInput, classifier.ClassNames, imageColumn, kind == ImageColumnKind.Path ? MLNetImageInput.Path : MLNetImageInput.Image,
            classifier.ScoreColumnName, classifier.PredictedLabelColumnName, resized, preprocessing, onnx.RelativeDifference);
    }

    private static DataViewType ImageType(MLNetExportOptions options) =>
        options.ImageInput == MLNetImageInput.Path ? TextDataViewType.Instance : new ImageDataViewType();

    /// <summary>The input schema with the image column as an image or a path (encoded bytes cannot be decoded by a stock ML.NET transform).</summary>
    private static DataViewSchema RewriteInput(DataViewSchema inputSchema, string imageColumn, MLNetExportOptions options)
    {
        var builder = new DataViewSchema.Builder();
        foreach (var column in inputSchema)
        {
            bool image = column.Name == imageColumn && ImageColumns.TryKindOf(column.Type) is ImageColumnKind.EncodedBytes or ImageColumnKind.Path;
            builder.AddColumn(column.Name, image ? ImageType(options) : column.Type, image ? null : column.Annotations);
        }
        return builder.ToSchema();
    }

    private static (ITransformer Stages, OnnxExportResult Onnx, string Preprocessing, int Resized) ClassifierStages(MLContext ml, CnnClassifierTransformer classifier,
        ImageColumnKind kind, DataViewSchema schema, MLNetExportOptions options)
    {
        var p = classifier.Network.Preprocess;
        if (p.Height != p.Width)
            throw new NotSupportedException($"The network's input is {p.Height}x{p.Width}; the plain ML.NET pipeline resizes to square inputs only.");
        if (p.CropPct > 1)
            throw new NotSupportedException($"CropPct {p.CropPct.ToString(CultureInfo.InvariantCulture)} > 1 pads the image (torchvision's CenterCrop), which ML.NET's ResizeImages cannot do.");
        int size = p.Height;
        int resized = Math.Max(size, (int)Math.Floor(size / p.CropPct));
        var onnx = ClassifierOnnxExport.Export(classifier, new OnnxExportOptions
        {
            NormalizeInside = true,
            PixelScale = 255,
            Output = OnnxExportOutput.Probabilities,
            Tolerance = options.Tolerance,
        });
        byte[] graph = MLNetOnnxGraph.Build(onnx.Model, onnx.OutputName, p.Channels, size, resized, classifier.ScoreColumnName, classifier.ClassNames);

        string image = classifier.ImageColumnName;
        var temporaries = new List<string> { ResizedImageColumn, MLNetOnnxGraph.PixelsInput, MLNetOnnxGraph.IndexOutput, HashColumn, HashValueColumn };
        ITransformer? loader = null;
        if (kind == ImageColumnKind.Path)
        {
            loader = ml.Transforms.LoadImages(LoadedImageColumn, options.ImageFolder, image).Fit(new EmptyDataView(schema));
            image = LoadedImageColumn;
            temporaries.Add(LoadedImageColumn);
        }
        var classByHash = ClassByHash(ml, classifier.ClassNames);
        var core = ml.Transforms.ResizeImages(ResizedImageColumn, resized, resized, image, ImageResizingEstimator.ResizingKind.IsoCrop, ImageResizingEstimator.Anchor.Center)
            .Append(ml.Transforms.ExtractPixels(MLNetOnnxGraph.PixelsInput, ResizedImageColumn, ImagePixelExtractingEstimator.ColorBits.Rgb,
                ImagePixelExtractingEstimator.ColorsOrder.ARGB, interleavePixelColors: false, offsetImage: 0, scaleImage: 1, outputAsFloatArray: true))
            .Append(ml.Transforms.ApplyOnnxModel([classifier.ScoreColumnName, MLNetOnnxGraph.IndexOutput], [MLNetOnnxGraph.PixelsInput], new MemoryStream(graph)))
            // The class index is a vector of one; hashing it whole is the stock transform that makes a scalar of it. Then the
            // hash → class name → key k + 1 = class k, with the class names as key values, as the classifier's own PredictedLabel.
            .Append(HashIndex(ml))
            .Append(ml.Transforms.Conversion.ConvertType(HashValueColumn, HashColumn, DataKind.UInt32))
            .Append(ml.Transforms.Conversion.MapValue(outputColumnName: classifier.PredictedLabelColumnName, keyValuePairs: classByHash,
                inputColumnName: HashValueColumn, treatValuesAsKeyType: true))
            .Append(ml.Transforms.DropColumns(temporaries.ToArray()))
            .Fit(new EmptyDataView(loader?.GetOutputSchema(schema) ?? schema));
        Verify(ml, classifier, core, image, resized, options.Tolerance);
        ITransformer fitted = loader is null ? core : new TransformerChain<ITransformer>(loader, core);
        string crop = resized != size ? FormattableString.Invariant($", centre crop to {size}x{size} in the graph") : "";
        string grey = p.Channels == 1 ? ", PIL's grey conversion in the graph" : "";
        string preprocessing = FormattableString.Invariant(
            $"ResizeImages {resized}x{resized} (IsoCrop, centre; images of another size are resampled with Skia's Mitchell cubic, not Pillow's {p.Interpolation.ToString().ToLowerInvariant()}){crop}{grey}, normalisation and softmax in the graph");
        return (fitted, onnx, preprocessing, resized);
    }

    /// <summary>
    /// The ML.NET stages against the network on a seeded random colour image of the resized size (which ML.NET does not resample
    /// and our preprocessing does not either): the centre crop, grey conversion, normalisation and softmax of the graph must give
    /// the network's probabilities within <paramref name="tolerance"/> of the largest, and the predicted key its class.
    /// </summary>
    /// <exception cref="OnnxExportException">They do not.</exception>
    private static void Verify(MLContext ml, CnnClassifierTransformer classifier, ITransformer stages, string imageColumn, int side, double tolerance)
    {
        var random = new Random(20260101);
        var rgb = new byte[side * side * 3];
        random.NextBytes(rgb);
        var rgba = new byte[side * side * 4];
        for (int p = 0; p < side * side; p++)
        {
            rgba[4 * p] = rgb[3 * p];
            rgba[4 * p + 1] = rgb[3 * p + 1];
            rgba[4 * p + 2] = rgb[3 * p + 2];
            rgba[4 * p + 3] = 255;
        }
        var ours = classifier.Probabilities([Data.ImageSample.FromPixels(rgb, side, side, 3, 0, "verification image")]);
        using var image = MLImage.CreateFromPixels(side, side, MLPixelFormat.Rgba32, rgba);
        var definition = SchemaDefinition.Create(typeof(VerificationRow));
        definition[0].ColumnName = imageColumn;
        var scored = stages.Transform(ml.Data.LoadFromEnumerable([new VerificationRow { Image = image }], definition));
        var scoreColumn = scored.Schema[classifier.ScoreColumnName];
        var keyColumn = scored.Schema[classifier.PredictedLabelColumnName];
        VBuffer<float> scores = default;
        uint key = 0;
        using (var cursor = scored.GetRowCursor([scoreColumn, keyColumn]))
        {
            if (!cursor.MoveNext()) throw new InvalidOperationException("The verification image gave no row.");
            cursor.GetGetter<VBuffer<float>>(scoreColumn)(ref scores);
            cursor.GetGetter<uint>(keyColumn)(ref key);
        }
        var theirs = scores.DenseValues().ToArray();
        double scale = ours.Max(), difference = ours.Zip(theirs, (a, b) => Math.Abs((double)a - b)).Max();
        if (theirs.Length != ours.Length || !(difference <= tolerance * scale))
            throw new OnnxExportException(FormattableString.Invariant(
                $"The plain ML.NET pipeline does not reproduce the classifier on a random {side}x{side} image: max |difference| {difference:G4} against {scale:G4} (tolerance {tolerance:G3})."));
        int best = Array.IndexOf(theirs, theirs.Max());
        if (key != best + 1)
            throw new OnnxExportException($"The plain ML.NET pipeline predicts key {key} where its probabilities say class {best} (key {best + 1}).");
    }

    private sealed class VerificationRow
    {
        [ImageType(1, 1)] // ML.NET wants a size; the stages resize whatever the image has
        public MLImage Image { get; set; } = null!;
    }

    private static IEstimator<ITransformer> HashIndex(MLContext ml) =>
        ml.Transforms.Conversion.Hash([new Microsoft.ML.Transforms.HashingEstimator.ColumnOptions(HashColumn, MLNetOnnxGraph.IndexOutput, numberOfBits: 30, combine: true)]);

    /// <summary>Hash of each class index (as <see cref="HashIndex"/> and <c>ConvertType</c> compute it) → class name; the hashes are checked distinct.</summary>
    private static KeyValuePair<uint, string>[] ClassByHash(MLContext ml, IReadOnlyList<string> classNames)
    {
        var indices = ml.Data.LoadFromEnumerable(Enumerable.Range(0, classNames.Count).Select(i => new IndexRow { Index = [i] }));
        var hashing = HashIndex(ml).Append(ml.Transforms.Conversion.ConvertType(HashValueColumn, HashColumn, DataKind.UInt32));
        var hashes = hashing.Fit(indices).Transform(indices).GetColumn<uint>(HashValueColumn).ToArray();
        if (hashes.Distinct().Count() != hashes.Length)
            throw new NotSupportedException($"Two of the {classNames.Count} class indices hash to the same value; the plain ML.NET pipeline cannot tell them apart.");
        return hashes.Select((h, i) => new KeyValuePair<uint, string>(h, classNames[i])).ToArray();
    }

    private sealed class IndexRow
    {
        [ColumnName(MLNetOnnxGraph.IndexOutput)]
        [VectorType(1)]
        public long[] Index { get; set; } = [];
    }

    /// <summary>A data view with a schema and no rows: what the stock estimators are fitted on (they learn nothing from rows).</summary>
    private sealed class EmptyDataView(DataViewSchema schema) : IDataView
    {
        public bool CanShuffle => true;

        public DataViewSchema Schema { get; } = schema;

        public long? GetRowCount() => 0;

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) => new Cursor(Schema);

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) => [new Cursor(Schema)];

        private sealed class Cursor(DataViewSchema schema) : DataViewRowCursor
        {
            public override DataViewSchema Schema { get; } = schema;

            public override long Position => -1;

            public override long Batch => 0;

            public override bool MoveNext() => false;

            public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) =>
                throw new InvalidOperationException("An empty data view has no rows to read.");

            public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) => id = default;

            public override bool IsColumnActive(DataViewSchema.Column column) => true;
        }
    }
}

/// <summary>How the plain ML.NET pipeline takes its images.</summary>
public enum MLNetImageInput
{
    /// <summary>A decoded image column (<see cref="MLImage"/>, e.g. <c>MLImage.CreateFromStream</c> or <c>CreateFromFile</c>): <c>[ImageType] MLImage Image</c>.</summary>
    Image,

    /// <summary>A text column of image file paths, loaded by ML.NET's <c>LoadImages</c>: <c>string Image</c>.</summary>
    Path,
}

/// <summary>Options of <see cref="MLNetExport"/>.</summary>
public sealed record MLNetExportOptions
{
    /// <summary>How the pipeline takes its images (default: decoded <see cref="MLImage"/> values).</summary>
    public MLNetImageInput ImageInput { get; init; } = MLNetImageInput.Image;

    /// <summary>With <see cref="MLNetImageInput.Path"/>: the folder relative paths are resolved in (null: as given).</summary>
    public string? ImageFolder { get; init; }

    /// <summary>Largest relative difference between the network and its ONNX export accepted by the export's verification (default 1e-4).</summary>
    public double Tolerance { get; init; } = 1e-4;

    /// <summary>Checks the options.</summary>
    /// <exception cref="ArgumentException">The first invalid option.</exception>
    public void Validate()
    {
        if (!Enum.IsDefined(ImageInput)) throw new ArgumentOutOfRangeException(nameof(ImageInput), ImageInput, "Unknown image input.");
        if (ImageFolder is not null && ImageInput != MLNetImageInput.Path)
            throw new ArgumentException("ImageFolder applies to ImageInput = Path only.", nameof(ImageFolder));
        if (!double.IsFinite(Tolerance) || Tolerance <= 0) throw new ArgumentOutOfRangeException(nameof(Tolerance), Tolerance, "The tolerance must be a finite number > 0.");
    }
}

/// <summary>A pipeline of ML.NET's own transformers made by <see cref="MLNetExport"/>.</summary>
/// <param name="Model">The pipeline: save it with <c>mlContext.Model.Save(Model, InputSchema, path)</c> or <see cref="Save"/>.</param>
/// <param name="InputSchema">The schema it takes (the fitted pipeline's, with the image column as <see cref="ImageInput"/> says).</param>
/// <param name="ClassNames">Class names in score order (the slot names of the score column, the key values of the predicted label).</param>
/// <param name="ImageColumn">Name of the image column.</param>
/// <param name="ImageInput">Whether the image column holds decoded images or paths.</param>
/// <param name="ScoreColumn">Name of the probability column.</param>
/// <param name="PredictedLabelColumn">Name of the predicted-class key column.</param>
/// <param name="ResizedSize">The side ResizeImages resizes images to (before the centre crop in the graph). An in-memory input class
/// declares its image column with <c>[ImageType(ResizedSize, ResizedSize)]</c> (ML.NET needs a size there; images of any size are resized).</param>
/// <param name="Preprocessing">What the ML.NET stages do to an image, in words (including what differs from this library).</param>
/// <param name="OnnxRelativeDifference">The ONNX export's verified relative difference from the network.</param>
public sealed record MLNetPipeline(ITransformer Model, DataViewSchema InputSchema, IReadOnlyList<string> ClassNames, string ImageColumn,
    MLNetImageInput ImageInput, string ScoreColumn, string PredictedLabelColumn, int ResizedSize, string Preprocessing, double OnnxRelativeDifference)
{
    /// <summary>Writes the pipeline with <c>mlContext.Model.Save</c> (through a temporary file, so a failed save leaves no partial file).</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="path">The model zip to write.</param>
    /// <param name="overwriteReadOnly">Replace a read-only file.</param>
    public void Save(MLContext mlContext, string path, bool overwriteReadOnly = false)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentException.ThrowIfNullOrEmpty(path);
        AtomicFile.Write(path, overwriteReadOnly, temporary => mlContext.Model.Save(Model, InputSchema, temporary));
    }
}
